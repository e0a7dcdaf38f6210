package main

import (
	"bufio"
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"

	"sipedge/pipeline/stages/auth"
	"sipedge/sipcore"
)

func main() {
	if err := run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "sipedge-users:", err)
		os.Exit(1)
	}
}

func run(args []string, stdin *os.File, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("sipedge-users", flag.ContinueOnError)
	fs.SetOutput(stderr)
	file := fs.String("f", "", "users file to update (created if missing)")
	realm := fs.String("realm", "", "digest realm ([auth] realm)")
	user := fs.String("user", "", "user name")
	password := fs.String("password", "", "password (visible in the process list: prefer the prompt or stdin)")
	del := fs.Bool("delete", false, "remove the user instead")
	redis := fs.Bool("redis", false, "print the Redis HSET command instead of writing a file")
	prefix := fs.String("prefix", "sipedge:user:", "Redis key prefix ([auth.redis] prefix)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *user == "" || *realm == "" {
		return errors.New("-user and -realm are required")
	}
	if strings.ContainsAny(*user+*realm, " \t\r\n") || strings.HasPrefix(*user, "#") {
		return errors.New("user names and realms with white space (or a user starting with #) cannot be stored in a users file")
	}
	if len(*user) > sipcore.MaxDigestField || len(*realm) > sipcore.MaxDigestField {
		return fmt.Errorf("user and realm are limited to %d bytes", sipcore.MaxDigestField)
	}
	if !*redis && *file == "" {
		return errors.New("-f (the users file) is required, or -redis")
	}
	line := ""
	if !*del {
		pw := *password
		if pw == "" {
			var err error
			if pw, err = readPassword(stdin, stderr); err != nil {
				return err
			}
		}
		if pw == "" {
			return errors.New("empty password refused")
		}
		md5 := sipcore.HA1(sipcore.AlgMD5, *user, *realm, pw)
		sha := sipcore.HA1(sipcore.AlgSHA256, *user, *realm, pw)
		if *redis {
			fmt.Fprintf(stdout, "HSET %s%s:%s ha1md5 %s ha1sha256 %s\n", *prefix, *realm, *user, md5, sha)
			return nil
		}
		line = strings.Join([]string{*user, *realm, md5, sha}, " ")
	} else if *redis {
		fmt.Fprintf(stdout, "DEL %s%s:%s\n", *prefix, *realm, *user)
		return nil
	}
	return update(*file, *user, *realm, line)
}

// update rewrites path with the user's line replaced (or appended, or
// removed when line is ""), checks the result parses, and renames it in.
func update(path, user, realm, line string) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	var out bytes.Buffer
	if len(old) == 0 {
		out.WriteString("# sipedge users: username realm ha1md5 ha1sha256 (\"-\" for an absent hash)\n")
	}
	found := false
	sc := bufio.NewScanner(bytes.NewReader(old))
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	for sc.Scan() {
		l := sc.Text()
		f := strings.Fields(l)
		if len(f) >= 2 && f[0] == user && f[1] == realm {
			if line != "" && !found {
				out.WriteString(line + "\n")
			}
			found = true
			continue
		}
		out.WriteString(l + "\n")
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !found {
		if line == "" {
			return fmt.Errorf("%s: no user %q in realm %q", path, user, realm)
		}
		out.WriteString(line + "\n")
	}
	if _, err := auth.ParseUsers(bytes.NewReader(out.Bytes()), path); err != nil {
		return fmt.Errorf("not written, the result would not load: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".sipedge-users-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(out.Bytes()); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// readPassword prompts twice without echo on a terminal, or reads one
// line from a pipe.
func readPassword(in *os.File, prompt io.Writer) (string, error) {
	fd := int(in.Fd())
	st, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil { // not a terminal
		l, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && err != io.EOF {
			return "", err
		}
		return strings.TrimRight(l, "\r\n"), nil
	}
	noEcho := *st
	noEcho.Lflag &^= unix.ECHO
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &noEcho); err != nil {
		return "", err
	}
	defer unix.IoctlSetTermios(fd, unix.TCSETS, st)
	r := bufio.NewReader(in)
	var pw [2]string
	for i, p := range []string{"Password: ", "Again: "} {
		fmt.Fprint(prompt, p)
		l, err := r.ReadString('\n')
		fmt.Fprintln(prompt)
		if err != nil && err != io.EOF {
			return "", err
		}
		pw[i] = strings.TrimRight(l, "\r\n")
	}
	if pw[0] != pw[1] {
		return "", errors.New("the passwords differ")
	}
	return pw[0], nil
}
