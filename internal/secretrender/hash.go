package secretrender

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"maps"
	"slices"
)

// Hash is a digest of a Secret's data: "sha256:" and the hex SHA-256 of every key and
// value, length-prefixed, in key order. Equal data gives an equal hash, and any change
// of a key or a value changes it. It cannot be turned back into a secret: every secret
// in the data (a client secret, a stable random value) is 32 bytes of entropy or more.
func Hash(data map[string][]byte) string {
	h := sha256.New()
	var n [8]byte
	for _, k := range slices.Sorted(maps.Keys(data)) {
		for _, part := range [][]byte{[]byte(k), data[k]} {
			binary.BigEndian.PutUint64(n[:], uint64(len(part)))
			h.Write(n[:])
			h.Write(part)
		}
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}
