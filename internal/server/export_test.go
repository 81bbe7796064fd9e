package server

// Sweep runs one pass of the janitor now.
var Sweep = (*Server).sweep
