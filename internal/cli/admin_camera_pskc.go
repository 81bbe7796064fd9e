package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/camotp/camotp/internal/httpx"
	"github.com/camotp/camotp/internal/model"
	"github.com/camotp/camotp/provisioning"
	"github.com/camotp/camotp/provisioning/pskc"
)

// pskcCredentials are the --key-file and --password-file flags of import
// and export.
type pskcCredentials struct {
	keyFile, passwordFile string
}

func (p *pskcCredentials) addFlags(c *cobra.Command) {
	c.Flags().StringVar(&p.keyFile, "key-file", "", "file holding the pre-shared key in hex (16, 24 or 32 bytes: AES-128/192/256)")
	c.Flags().StringVar(&p.passwordFile, "password-file", "", "file holding the password (its first line) a PBKDF2 key derives from")
}

// read returns the key or password the flags name; required says one
// must be given.
func (p *pskcCredentials) read(cmd string, required bool) (key []byte, password string, err error) {
	switch {
	case p.keyFile != "" && p.passwordFile != "":
		return nil, "", usagef("%s: give --key-file or --password-file, not both", cmd)
	case p.keyFile != "":
		data, err := readSmallFile(p.keyFile)
		if err != nil {
			return nil, "", err
		}
		key, err := hex.DecodeString(strings.Join(strings.Fields(string(data)), ""))
		if err != nil || (len(key) != 16 && len(key) != 24 && len(key) != 32) {
			return nil, "", fmt.Errorf("--key-file %s: want 16, 24 or 32 bytes in hex (32, 48 or 64 hex digits)", p.keyFile)
		}
		return key, "", nil
	case p.passwordFile != "":
		data, err := readSmallFile(p.passwordFile)
		if err != nil {
			return nil, "", err
		}
		pw, _, _ := strings.Cut(string(data), "\n")
		pw = strings.TrimSuffix(pw, "\r")
		if pw == "" {
			return nil, "", fmt.Errorf("--password-file %s: the first line is empty", p.passwordFile)
		}
		return nil, pw, nil
	case required:
		return nil, "", usagef("%s: give --key-file or --password-file: seeds are never exported in plain text", cmd)
	}
	return nil, "", nil
}

// readSmallFile reads a key, password or key list file of at most 1 MiB.
func readSmallFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, 1<<20+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > 1<<20 {
		return nil, fmt.Errorf("%s: larger than 1 MiB", path)
	}
	return data, nil
}

// readPublicKeys reads a CSV side file of serial,publicKey lines (blank
// lines and lines starting with # are skipped).
func readPublicKeys(path string) (map[string]string, error) {
	data, err := readSmallFile(path)
	if err != nil {
		return nil, err
	}
	keys := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		sn, key, ok := strings.Cut(line, ",")
		sn, key = strings.TrimSpace(sn), strings.TrimSpace(key)
		if !ok || sn == "" || key == "" {
			return nil, fmt.Errorf("%s line %d: want serial,publicKey", path, n)
		}
		if _, dup := keys[sn]; dup {
			return nil, fmt.Errorf("%s line %d: serial %s given twice", path, n, sn)
		}
		keys[sn] = key
	}
	return keys, sc.Err()
}

func adminCameraImportCmd(env Env, t *adminTarget) *cobra.Command {
	var file, camModel, pubFile string
	var allowPlain bool
	var cred pskcCredentials
	c := &cobra.Command{
		Use:   "import --pskc FILE [--model M] [--key-file F | --password-file F] [--allow-plaintext] [--public-keys CSV]",
		Short: "register cameras or tokens seeded at the factory from a PSKC file (RFC 6030), their seeds active",
		Args:  noArgs,
	}
	c.Flags().StringVar(&file, "pskc", "", "the PSKC file")
	c.Flags().StringVar(&camModel, "model", "", "every camera's model (body4, body3 or workforce); default: each key package's DeviceInfo/Model")
	c.Flags().BoolVar(&allowPlain, "allow-plaintext", false, "accept secrets the file holds in plain text")
	c.Flags().StringVar(&pubFile, "public-keys", "", "CSV file of serial,publicKey lines: the cameras' MQTT identities ('camotp camera init' prints them); cameras without one cannot be rotated or wiped until 'set-key'")
	cred.addFlags(c)
	c.RunE = func(cmd *cobra.Command, _ []string) error {
		if file == "" {
			return usagef("admin camera import: --pskc FILE is required")
		}
		key, pw, err := cred.read("admin camera import", false)
		if err != nil {
			return err
		}
		req := provisioning.PSKCImportRequest{Key: key, Password: pw, AllowPlaintext: allowPlain, Model: camModel}
		if req.PSKC, err = readPSKCFile(file); err != nil {
			return err
		}
		if pubFile != "" {
			if req.PublicKeys, err = readPublicKeys(pubFile); err != nil {
				return err
			}
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var resp provisioning.PSKCImportResponse
		if err := ac.do(cmd.Context(), "POST", provisioning.PSKCImportPath, req, &resp); err != nil {
			return err
		}
		keyless := 0
		for _, cam := range resp.Cameras {
			fmt.Fprintf(env.Stdout, "camera %s (%s) imported, provisioned\n", cam.Serial, cam.Model)
			if cam.PublicKey == "" {
				keyless++
			}
		}
		fmt.Fprintf(env.Stdout, "%d cameras imported from a %s PSKC file\n", len(resp.Cameras), resp.Protection)
		if keyless > 0 {
			fmt.Fprintf(env.Stderr, "note: %d cameras have no MQTT identity key: their codes sign officers in, but rotate and wipe are refused until 'camotp admin camera set-key SN --public-key K'\n", keyless)
		}
		return nil
	}
	return c
}

// readPSKCFile reads a PSKC file within pskc.MaxDocumentBytes.
func readPSKCFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, pskc.MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(data) > pskc.MaxDocumentBytes {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, pskc.MaxDocumentBytes)
	}
	return data, nil
}

func adminCameraExportCmd(env Env, t *adminTarget) *cobra.Command {
	var file, keyName string
	var iterations int
	var cred pskcCredentials
	c := &cobra.Command{
		Use:   "export --pskc FILE (--key-file F | --password-file F) [--iterations N] [--key-name NAME] [SERIAL...]",
		Short: "write the cameras' seeds to an encrypted PSKC file (RFC 6030) for a migration; default every provisioned camera",
		Args:  cobra.MaximumNArgs(pskc.MaxKeys),
	}
	c.Flags().StringVar(&file, "pskc", "", "the PSKC file to create (0600; an existing file is never overwritten)")
	c.Flags().IntVar(&iterations, "iterations", 0, fmt.Sprintf("PBKDF2 iterations with --password-file (default %d)", pskc.DefaultIterations))
	c.Flags().StringVar(&keyName, "key-name", "", "name of the key or password written in the file, for whoever imports it")
	cred.addFlags(c)
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if file == "" {
			return usagef("admin camera export: --pskc FILE is required")
		}
		key, pw, err := cred.read("admin camera export", true)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(file); err == nil {
			return fmt.Errorf("%s exists: export never overwrites a file; choose another name", file)
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		doc, err := ac.export(cmd.Context(), provisioning.PSKCExportRequest{Serials: args, Key: key, Password: pw, Iterations: iterations, KeyName: keyName})
		if err != nil {
			return err
		}
		if err := writeNewFile(file, doc); err != nil {
			return err
		}
		n := bytes.Count(doc, []byte("<KeyPackage>"))
		fmt.Fprintf(env.Stdout, "%d camera seeds exported to %s (encrypted; keep the file and its key apart)\n", n, file)
		return nil
	}
	return c
}

// writeNewFile creates path 0600 with data, failing if it exists.
func writeNewFile(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// export asks the server for an encrypted PSKC document; the answer is
// the document itself, not JSON.
func (c adminClient) export(ctx context.Context, req provisioning.PSKCExportRequest) ([]byte, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	i := c.cur.Load() % int64(len(c.bases))
	base := c.bases[i]
	hr, err := http.NewRequestWithContext(ctx, "POST", base+provisioning.PSKCExportPath, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	hr.Header.Set("Authorization", "Bearer "+c.token)
	hr.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() == nil {
			c.failover(i)
		}
		return nil, fmt.Errorf("reach camotp server at %s: %w", base, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 2*pskc.MaxDocumentBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e httpx.Error
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return nil, apiError{resp.StatusCode, e.Error}
	}
	if ct := resp.Header.Get("Content-Type"); ct != provisioning.PSKCContentType {
		return nil, fmt.Errorf("server answered %s, want %s", ct, provisioning.PSKCContentType)
	}
	if len(data) > 2*pskc.MaxDocumentBytes {
		return nil, errors.New("answer too large")
	}
	return data, nil
}

func adminCameraSetKeyCmd(env Env, t *adminTarget) *cobra.Command {
	var pub string
	c := &cobra.Command{
		Use:   "set-key SN --public-key K",
		Short: "register the MQTT identity of a camera imported without one (never replaces a key)",
		Args:  oneArg("SN --public-key K"),
	}
	c.Flags().StringVar(&pub, "public-key", "", "the camera's publicKey from 'camotp camera init'")
	c.RunE = func(cmd *cobra.Command, args []string) error {
		if pub == "" {
			return usagef("admin camera set-key: want SN --public-key K")
		}
		ac, err := t.client(env)
		if err != nil {
			return err
		}
		var cam model.Camera
		if err := ac.do(cmd.Context(), "POST", "/api/v1/admin/cameras/"+url.PathEscape(args[0])+"/key", provisioning.CameraKeyRequest{PublicKey: pub}, &cam); err != nil {
			return err
		}
		fmt.Fprintf(env.Stdout, "camera %s: identity key registered\n", cam.Serial)
		return nil
	}
	return c
}
