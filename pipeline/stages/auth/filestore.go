package auth

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"

	"sipedge/sipcore"
)

// Users is a parsed users file: realm -> user -> entry. It is immutable once
// built, so that readers need no lock.
type Users map[string]map[string]*Entry

// Len counts the users of every realm.
func (u Users) Len() int {
	n := 0
	for _, r := range u {
		n += len(r)
	}
	return n
}

// ParseUsers reads the users file format:
//
//	# comment
//	username realm ha1md5 ha1sha256
//
// separated by spaces or tabs, with "-" for an absent hash (at least one
// must be given). Neither the user name nor the realm may contain white
// space or start with '#'. name labels errors (a path). Every problem is
// reported with its line number.
func ParseUsers(r io.Reader, name string) (Users, error) {
	u := Users{}
	where := map[string]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64*1024)
	var errs []string
	line := 0
	for sc.Scan() {
		line++
		f := bytes.Fields(sc.Bytes())
		if len(f) == 0 || f[0][0] == '#' {
			continue
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Sprintf("%s line %d: %s", name, line, fmt.Sprintf(format, args...)))
		}
		if len(f) != 4 {
			bad("want 4 fields (username realm ha1md5 ha1sha256, \"-\" for an absent hash), got %d", len(f))
			continue
		}
		user, realm := string(f[0]), string(f[1])
		if len(user) > sipcore.MaxDigestField || len(realm) > sipcore.MaxDigestField {
			bad("user name or realm longer than %d bytes", sipcore.MaxDigestField)
			continue
		}
		var e Entry
		ok := true
		for i, alg := range [2]sipcore.Algorithm{sipcore.AlgMD5, sipcore.AlgSHA256} {
			v := f[2+i]
			if string(v) == "-" {
				continue
			}
			if err := e.SetHA1(alg, v); err != nil {
				bad("%s HA1 of %q: %v", alg, user, err)
				ok = false
			}
		}
		if !ok {
			continue
		}
		if e.Has == 0 {
			bad("user %q has neither HA1: give at least one (sipedge-users writes both)", user)
			continue
		}
		key := realm + "\x00" + user
		if prev, dup := where[key]; dup {
			bad("user %q in realm %q is already on line %d: keep one", user, realm, prev)
			continue
		}
		where[key] = line
		if u[realm] == nil {
			u[realm] = map[string]*Entry{}
		}
		u[realm][user] = &e
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Sprintf("%s line %d: %v", name, line+1, err))
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("auth: users file %s", strings.Join(errs, "; "))
	}
	return u, nil
}

// FileStore serves credentials from a users file held in memory as an
// immutable snapshot behind an atomic pointer: Peek reads it on the hot path
// without a lock, Reload swaps in a new one.
type FileStore struct {
	path string
	snap atomic.Pointer[Users]

	mu   sync.Mutex
	invs []Invalidator
}

// OpenFile loads the users file at path.
func OpenFile(path string) (*FileStore, error) {
	f := &FileStore{path: path}
	if err := f.Reload(); err != nil {
		return nil, err
	}
	return f, nil
}

// NewFileStore serves users (tests, or users built in code).
func NewFileStore(users Users) *FileStore {
	f := &FileStore{}
	f.snap.Store(&users)
	return f
}

// Name implements Store.
func (f *FileStore) Name() string { return "file" }

// Path is the file the store reloads from ("" when built in code).
func (f *FileStore) Path() string { return f.path }

// Len counts the users loaded.
func (f *FileStore) Len() int { return (*f.snap.Load()).Len() }

// Reload reads the file again and swaps it in. On error the previous
// users stay in service.
func (f *FileStore) Reload() error {
	if f.path == "" {
		return nil
	}
	r, err := os.Open(f.path)
	if err != nil {
		return fmt.Errorf("auth: users file: %w (create it with sipedge-users, or fix [auth] users_file)", err)
	}
	defer r.Close()
	u, err := ParseUsers(r, f.path)
	if err != nil {
		return err
	}
	f.snap.Store(&u)
	f.mu.Lock()
	invs := f.invs
	f.mu.Unlock()
	for _, inv := range invs {
		inv.InvalidateAll()
	}
	return nil
}

// ReloadOnSIGHUP reloads the file on every SIGHUP until ctx is done;
// report gets the outcome of each reload (nil on success).
func (f *FileStore) ReloadOnSIGHUP(ctx context.Context, report func(error)) {
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ch:
				err := f.Reload()
				if report != nil {
					report(err)
				}
			case <-ctx.Done():
				return
			}
		}
	}()
}

// Notify implements Notifier: inv hears of every reload.
func (f *FileStore) Notify(inv Invalidator) {
	f.mu.Lock()
	f.invs = append(f.invs, inv)
	f.mu.Unlock()
}

// Peek implements Peeker. The map lookups convert the byte slices to
// strings without allocating (the compiler's map-index special case).
func (f *FileStore) Peek(realm, user []byte) *Entry {
	return (*f.snap.Load())[string(realm)][string(user)]
}

// Lookup implements Store.
func (f *FileStore) Lookup(_ context.Context, realm, user string) (Entry, error) {
	if e := (*f.snap.Load())[realm][user]; e != nil {
		return *e, nil
	}
	return Entry{}, ErrNotFound
}
