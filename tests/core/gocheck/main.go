// Command gocheck checks civic-ledger's trees, proofs and notes with Go's independent
// implementation, golang.org/x/mod/sumdb/tlog and sumdb/note, and signs notes for civic-ledger
// to open. It is built by tests/core/test_go_interop.py with Debian's packages:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o gocheck main.go
//
// It reads one JSON object {"cases": [...]} on stdin and writes {"results": [...]}, one result
// per case, in order. Every case has an "op"; hashes, roots and proofs are base64.
//
// Debian's x/mod (0.7.0) knows no cosignatures, so the "cosign" and "open" (with "cosigners")
// cases use cosigV1 below: a few lines written from c2sp.org/tlog-cosignature, not x/mod.
package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

type request struct {
	Cases []map[string]json.RawMessage `json:"cases"`
}

type result map[string]any

func main() {
	var req request
	if err := json.NewDecoder(os.Stdin).Decode(&req); err != nil {
		fmt.Fprintln(os.Stderr, "gocheck: reading the request:", err)
		os.Exit(2)
	}
	out := make([]result, 0, len(req.Cases))
	for _, c := range req.Cases {
		r, err := run(c)
		if err != nil {
			r = result{"ok": false, "error": err.Error()}
		}
		out = append(out, r)
	}
	if err := json.NewEncoder(os.Stdout).Encode(map[string]any{"results": out}); err != nil {
		fmt.Fprintln(os.Stderr, "gocheck: writing the results:", err)
		os.Exit(2)
	}
}

func run(c map[string]json.RawMessage) (result, error) {
	var op string
	if err := json.Unmarshal(c["op"], &op); err != nil {
		return nil, fmt.Errorf("op: %w", err)
	}
	switch op {
	case "open":
		return openNote(c)
	case "check_tree":
		return checkTree(c)
	case "check_record":
		return checkRecord(c)
	case "tree":
		return buildTree(c)
	case "sign":
		return signNote(c)
	case "cosign":
		return cosign(c)
	}
	return nil, fmt.Errorf("unknown op %q", op)
}

func field[T any](c map[string]json.RawMessage, name string) (T, error) {
	var v T
	raw, ok := c[name]
	if !ok {
		return v, fmt.Errorf("missing %q", name)
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%s: %w", name, err)
	}
	return v, nil
}

func hashOf(text string) (tlog.Hash, error) {
	var h tlog.Hash
	raw, err := base64.StdEncoding.DecodeString(text)
	if err != nil || len(raw) != tlog.HashSize {
		return h, fmt.Errorf("not a base64 hash: %q", text)
	}
	copy(h[:], raw)
	return h, nil
}

func hashesOf(texts []string) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(texts))
	for i, t := range texts {
		h, err := hashOf(t)
		if err != nil {
			return nil, err
		}
		out[i] = h
	}
	return out, nil
}

func b64(h tlog.Hash) string { return base64.StdEncoding.EncodeToString(h[:]) }

// openNote: note.Open with the given log (type 0x01) and cosigner (type 0x04) verifier keys.
func openNote(c map[string]json.RawMessage) (result, error) {
	text, err := field[string](c, "note")
	if err != nil {
		return nil, err
	}
	vkeys, err := field[[]string](c, "vkeys")
	if err != nil {
		return nil, err
	}
	var verifiers []note.Verifier
	for _, k := range vkeys {
		v, err := note.NewVerifier(k)
		if err != nil {
			return nil, fmt.Errorf("note.NewVerifier(%q): %w", k, err)
		}
		verifiers = append(verifiers, v)
	}
	if _, ok := c["cosigners"]; ok {
		keys, err := field[[]string](c, "cosigners")
		if err != nil {
			return nil, err
		}
		for _, k := range keys {
			v, err := newCosigV1Verifier(k)
			if err != nil {
				return nil, fmt.Errorf("cosigner key %q: %w", k, err)
			}
			verifiers = append(verifiers, v)
		}
	}
	n, err := note.Open([]byte(text), note.VerifierList(verifiers...))
	if err != nil {
		return result{"ok": false, "error": err.Error()}, nil
	}
	var verified []string
	for _, s := range n.Sigs {
		verified = append(verified, fmt.Sprintf("%s+%08x", s.Name, s.Hash))
	}
	r := result{"ok": true, "text": n.Text, "verified": verified}
	// The size and root as sumdb/tlog reads them: the go.sum database's tree note is a
	// checkpoint whose origin is "go.sum database tree", so ParseTree gets that origin line.
	origin, rest, _ := strings.Cut(n.Text, "\n")
	if tree, err := tlog.ParseTree([]byte("go.sum database tree\n" + rest)); err == nil {
		r["origin"] = origin
		r["tree_size"] = tree.N
		r["tree_root"] = b64(tree.Hash)
	}
	return r, nil
}

// checkTree: tlog.CheckTree, the consistency proof from (old_size, old_root) to (new_size, new_root).
func checkTree(c map[string]json.RawMessage) (result, error) {
	oldSize, err := field[int64](c, "old_size")
	if err != nil {
		return nil, err
	}
	newSize, err := field[int64](c, "new_size")
	if err != nil {
		return nil, err
	}
	texts := map[string]string{}
	for _, name := range []string{"old_root", "new_root"} {
		if texts[name], err = field[string](c, name); err != nil {
			return nil, err
		}
	}
	oldRoot, err := hashOf(texts["old_root"])
	if err != nil {
		return nil, err
	}
	newRoot, err := hashOf(texts["new_root"])
	if err != nil {
		return nil, err
	}
	proofTexts, err := field[[]string](c, "proof")
	if err != nil {
		return nil, err
	}
	proof, err := hashesOf(proofTexts)
	if err != nil {
		return nil, err
	}
	if err := tlog.CheckTree(proof, newSize, newRoot, oldSize, oldRoot); err != nil {
		return result{"ok": false, "error": err.Error()}, nil
	}
	return result{"ok": true}, nil
}

// checkRecord: tlog.CheckRecord, the inclusion proof of leaf hash "leaf" at "index".
func checkRecord(c map[string]json.RawMessage) (result, error) {
	index, err := field[int64](c, "index")
	if err != nil {
		return nil, err
	}
	size, err := field[int64](c, "size")
	if err != nil {
		return nil, err
	}
	leafText, err := field[string](c, "leaf")
	if err != nil {
		return nil, err
	}
	rootText, err := field[string](c, "root")
	if err != nil {
		return nil, err
	}
	leaf, err := hashOf(leafText)
	if err != nil {
		return nil, err
	}
	root, err := hashOf(rootText)
	if err != nil {
		return nil, err
	}
	proofTexts, err := field[[]string](c, "proof")
	if err != nil {
		return nil, err
	}
	proof, err := hashesOf(proofTexts)
	if err != nil {
		return nil, err
	}
	if err := tlog.CheckRecord(proof, size, root, index, leaf); err != nil {
		return result{"ok": false, "error": err.Error()}, nil
	}
	return result{"ok": true}, nil
}

// buildTree stores the given leaf hashes the way sumdb/tlog does and reports every stored
// hash with its (level, index), the root of every size, and the proofs asked for.
func buildTree(c map[string]json.RawMessage) (result, error) {
	leafTexts, err := field[[]string](c, "leaves")
	if err != nil {
		return nil, err
	}
	leaves, err := hashesOf(leafTexts)
	if err != nil {
		return nil, err
	}
	var stored []tlog.Hash
	reader := tlog.HashReaderFunc(func(indexes []int64) ([]tlog.Hash, error) {
		out := make([]tlog.Hash, len(indexes))
		for i, x := range indexes {
			if x < 0 || x >= int64(len(stored)) {
				return nil, errors.New("no such stored hash")
			}
			out[i] = stored[x]
		}
		return out, nil
	})
	roots := []string{}
	for n, leaf := range leaves {
		hashes, err := tlog.StoredHashesForRecordHash(int64(n), leaf, reader)
		if err != nil {
			return nil, err
		}
		stored = append(stored, hashes...)
		root, err := tlog.TreeHash(int64(n+1), reader)
		if err != nil {
			return nil, err
		}
		roots = append(roots, b64(root))
	}
	nodes := make([][3]any, len(stored))
	for i, h := range stored {
		level, index := tlog.SplitStoredHashIndex(int64(i))
		nodes[i] = [3]any{level, index, b64(h)}
	}
	r := result{"ok": true, "roots": roots, "nodes": nodes}
	if _, ok := c["record_proofs"]; ok {
		pairs, err := field[[][2]int64](c, "record_proofs")
		if err != nil {
			return nil, err
		}
		var proofs [][]string
		for _, p := range pairs {
			proof, err := tlog.ProveRecord(p[1], p[0], reader)
			if err != nil {
				return nil, err
			}
			proofs = append(proofs, texts(proof))
		}
		r["record_proofs"] = proofs
	}
	if _, ok := c["tree_proofs"]; ok {
		pairs, err := field[[][2]int64](c, "tree_proofs")
		if err != nil {
			return nil, err
		}
		var proofs [][]string
		for _, p := range pairs {
			proof, err := tlog.ProveTree(p[1], p[0], reader)
			if err != nil {
				return nil, err
			}
			proofs = append(proofs, texts(proof))
		}
		r["tree_proofs"] = proofs
	}
	return r, nil
}

func texts(hashes []tlog.Hash) []string {
	out := make([]string, len(hashes))
	for i, h := range hashes {
		out[i] = b64(h)
	}
	return out
}

// signNote: a fresh key from note.GenerateKey, and note.Sign of the text with it.
func signNote(c map[string]json.RawMessage) (result, error) {
	name, err := field[string](c, "name")
	if err != nil {
		return nil, err
	}
	text, err := field[string](c, "text")
	if err != nil {
		return nil, err
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		return nil, err
	}
	signer, err := note.NewSigner(skey)
	if err != nil {
		return nil, err
	}
	signed, err := note.Sign(&note.Note{Text: text}, signer)
	if err != nil {
		return nil, err
	}
	return result{"ok": true, "skey": skey, "vkey": vkey, "note": string(signed),
		"key_hash": fmt.Sprintf("%08x", signer.KeyHash())}, nil
}

// ---- cosignature/v1, from c2sp.org/tlog-cosignature ----------------------------------------

const algCosigV1 = 0x04

func cosigKeyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosigV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

func cosigMessage(timestamp uint64, text []byte) []byte {
	return append([]byte("cosignature/v1\ntime "+strconv.FormatUint(timestamp, 10)+"\n"), text...)
}

type cosigV1Verifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
}

func (v *cosigV1Verifier) Name() string    { return v.name }
func (v *cosigV1Verifier) KeyHash() uint32 { return v.hash }
func (v *cosigV1Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != 8+ed25519.SignatureSize {
		return false
	}
	t := binary.BigEndian.Uint64(sig)
	if t > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.pub, cosigMessage(t, msg), sig[8:])
}

func newCosigV1Verifier(vkey string) (*cosigV1Verifier, error) {
	parts := strings.SplitN(vkey, "+", 3)
	if len(parts) != 3 {
		return nil, errors.New("not name+hash+key")
	}
	raw, err := base64.StdEncoding.DecodeString(parts[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize || raw[0] != algCosigV1 {
		return nil, errors.New("not a type 0x04 Ed25519 key")
	}
	v := &cosigV1Verifier{name: parts[0], pub: ed25519.PublicKey(raw[1:])}
	v.hash = cosigKeyHash(v.name, v.pub)
	if fmt.Sprintf("%08x", v.hash) != parts[1] {
		return nil, errors.New("wrong key hash")
	}
	return v, nil
}

// cosign: a fresh witness key, and its cosignature/v1 line on the text at the given time.
func cosign(c map[string]json.RawMessage) (result, error) {
	name, err := field[string](c, "name")
	if err != nil {
		return nil, err
	}
	text, err := field[string](c, "text")
	if err != nil {
		return nil, err
	}
	timestamp, err := field[uint64](c, "timestamp")
	if err != nil {
		return nil, err
	}
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	hash := cosigKeyHash(name, pub)
	sig := binary.BigEndian.AppendUint32(nil, hash)
	sig = binary.BigEndian.AppendUint64(sig, timestamp)
	sig = append(sig, ed25519.Sign(priv, cosigMessage(timestamp, []byte(text)))...)
	vkey := fmt.Sprintf("%s+%08x+%s", name, hash,
		base64.StdEncoding.EncodeToString(append([]byte{algCosigV1}, pub...)))
	line := "— " + name + " " + base64.StdEncoding.EncodeToString(sig) + "\n"
	return result{"ok": true, "vkey": vkey, "line": line}, nil
}
