// Namespace names: short, URL- and shell-safe, unique among an account's live namespaces. The database
// checks the same pattern (migrations/0001_spine.sql); this is the message a caller sees first.
export const NAMESPACE_NAME = /^[a-z0-9][a-z0-9_-]{0,62}$/;

export const NAMESPACE_NAME_RULE = 'namespace names are 1-63 of a-z, 0-9, _ and -, starting with a letter or digit';
