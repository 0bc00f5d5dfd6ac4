package node

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/shoalnet/shoal/crypto"
)

// Files and directories of a repo (REPO is the repo dir).
const (
	KeyFileName       = "identity.key" // the node's ed25519 identity, mode 0600
	TokenFileName     = "api-token"    // the API bearer token, mode 0600
	APIFileName       = "api"          // host:port the running daemon's API bound, removed on exit
	LockFileName      = "repo.lock"    // flock'ed by the running daemon, holds its pid
	DatastoreDirName  = "datastore"    // the pebble datastore
	tokenBytes        = 32
	maxSmallFileBytes = 4 << 10
)

// DefaultRepoDir returns the repo dir used when none is given: $SHOAL_REPO,
// else ~/.shoal.
func DefaultRepoDir() (string, error) {
	if d := os.Getenv("SHOAL_REPO"); d != "" {
		return d, nil
	}
	home, err := os.UserHomeDir()
	if err != nil {
		return "", fmt.Errorf("no home directory to put ~/.shoal in (%v); pass --repo DIR or set SHOAL_REPO", err)
	}
	return filepath.Join(home, ".shoal"), nil
}

// Init creates a new repo in dir: the identity key (read from rnd; pass
// nil for crypto/rand), cfg written as config.toml with a comment on every
// field, and a fresh API token. cfg must validate. Init refuses a dir that
// already holds a repo or any other file, and removes what it created when
// it fails.
func Init(dir string, cfg Config, rnd io.Reader) (err error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(dir, ConfigFileName)); err == nil {
		return fmt.Errorf("%s already holds a shoal repo; refusing to overwrite it (use another --repo, or delete the dir to start over)", dir)
	}
	entries, err := os.ReadDir(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("create repo dir: %w", err)
		}
		defer func() {
			if err != nil {
				os.RemoveAll(dir)
			}
		}()
	case err != nil:
		return fmt.Errorf("read repo dir %s: %w", dir, err)
	case len(entries) > 0:
		return fmt.Errorf("%s is not empty; refusing to create a repo there (use an empty or new --repo dir)", dir)
	default:
		defer func() {
			if err != nil {
				for _, n := range []string{KeyFileName, TokenFileName, ConfigFileName} {
					os.Remove(filepath.Join(dir, n))
				}
			}
		}()
	}
	key, err := crypto.GenerateKey(rnd)
	if err != nil {
		return err
	}
	if err := crypto.WriteKeyFile(filepath.Join(dir, KeyFileName), key); err != nil {
		return err
	}
	tok := make([]byte, tokenBytes)
	if _, err := io.ReadFull(rand.Reader, tok); err != nil {
		return fmt.Errorf("generate api token: %w", err)
	}
	if err := writeFileExcl(filepath.Join(dir, TokenFileName), []byte(hex.EncodeToString(tok)+"\n"), 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(dir, ConfigFileName), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("create config: %w", err)
	}
	if err := WriteConfig(f, cfg); err != nil {
		f.Close()
		return fmt.Errorf("write config %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync config %s: %w", f.Name(), err)
	}
	return f.Close()
}

func writeFileExcl(path string, data []byte, mode fs.FileMode) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// CheckRepo reports whether dir looks like a repo (it has a config file),
// with an error that says how to create one when it does not.
func CheckRepo(dir string) error {
	st, err := os.Stat(filepath.Join(dir, ConfigFileName))
	if err != nil || !st.Mode().IsRegular() {
		return fmt.Errorf("%s is %w (no %s); create one with: shoal init --repo %s", dir, errNoRepo, ConfigFileName, dir)
	}
	return nil
}

// ReadToken reads the API token of the repo in dir.
func ReadToken(dir string) (string, error) {
	path := filepath.Join(dir, TokenFileName)
	f, err := os.Open(path)
	if err != nil {
		return "", fmt.Errorf("open api token: %w (is %s a shoal repo? create one with: shoal init --repo %s)", err, dir, dir)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return "", fmt.Errorf("stat api token %s: %w", path, err)
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return "", fmt.Errorf("api token %s has mode %#o, want 0600 (run: chmod 600 %s)", path, perm, path)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSmallFileBytes))
	if err != nil {
		return "", fmt.Errorf("read api token %s: %w", path, err)
	}
	tok := strings.TrimSpace(string(b))
	if raw, err := hex.DecodeString(tok); err != nil || len(raw) != tokenBytes {
		return "", fmt.Errorf("api token %s is corrupt (want %d hex digits); restore it from a backup or create a new repo", path, 2*tokenBytes)
	}
	return tok, nil
}

// tokenEqual compares tokens in constant time.
func tokenEqual(a, b string) bool {
	return subtle.ConstantTimeCompare([]byte(a), []byte(b)) == 1
}

// A repoLock is an exclusive flock on REPO/repo.lock held while a daemon
// runs. The kernel drops it when the process dies, so a crash leaves no
// stale lock.
type repoLock struct {
	f *os.File
}

// ErrRepoLocked is returned (wrapped) by New when another daemon holds the repo.
var ErrRepoLocked = errors.New("repo is in use by another shoal daemon")

func lockRepo(dir string) (*repoLock, error) {
	path := filepath.Join(dir, LockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open lock file: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		defer f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			b, _ := io.ReadAll(io.LimitReader(f, 32))
			pid := strings.TrimSpace(string(b))
			if _, perr := strconv.Atoi(pid); perr != nil {
				pid = "unknown"
			}
			return nil, fmt.Errorf("%s: %w (pid %s); stop it first, or use another --repo", dir, ErrRepoLocked, pid)
		}
		return nil, fmt.Errorf("lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return &repoLock{f: f}, nil
}

func (l *repoLock) unlock() error {
	l.f.Truncate(0)
	unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
	return l.f.Close()
}
