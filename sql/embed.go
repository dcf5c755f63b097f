// Package schema embeds hookrelay's SQL migrations, so that the consumer
// applies the same files that sqlc reads as its schema.
package schema

import "embed"

// Migrations holds migrations/*.sql, applied in the order of their names.
//
//go:embed migrations/*.sql
var Migrations embed.FS
