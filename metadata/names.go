package metadata

import (
	"fmt"
	"strings"
)

// validateName checks one path component: not empty, not "." or "..",
// no '/' or NUL (errBadName, which is ErrInvalid), at most NameMax bytes
// (ErrNameTooLong).
func validateName(name string) error {
	switch {
	case name == "" || name == "." || name == "..":
		return fmt.Errorf("metadata: name %q: %w", name, errBadName)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("metadata: name %q: %w", name, errBadName)
	case len(name) > NameMax:
		return fmt.Errorf("metadata: name of %d bytes (max %d): %w", len(name), NameMax, ErrNameTooLong)
	}
	return nil
}
