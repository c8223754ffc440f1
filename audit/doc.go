// Package audit writes the AIP audit log (AIP v1alpha2 §8): one flat JSON
// object per line (JSON Lines), one line per decision or event.
//
// Every line carries the five fields §8.1 requires, in this order:
// timestamp, direction, decision, policy_mode and violation. They are written
// on every record, including method, protected-path, DLP and identity events,
// because a consumer that filters on decision or violation must never miss an
// entry. The optional fields of §8.2 and the identity events of §8.4 follow;
// empty optional fields are omitted. The output never contains the time,
// level and msg keys of a log/slog handler: the audit log is a data stream,
// not a diagnostic log.
//
// Lines are built by hand into a byte buffer rather than through
// encoding/json, because Log runs once per relayed message. Strings are
// escaped so that every line is valid UTF-8 JSON and safe to view in a
// terminal: control characters, DEL, C1 controls, U+2028/U+2029 and the
// Unicode bidirectional overrides are written as \u escapes, and invalid
// UTF-8 becomes \ufffd. The records of one decision (LogAll), or of several
// gathered in a Batch (WriteBatch), are written with a single Write call
// while a mutex is held, so concurrent records never interleave, and with an
// O_APPEND file they are one write(2).
//
// Log validates the required fields and refuses (writes nothing and returns
// an error) a record whose direction, decision or policy mode is not one of
// the values §8.1 allows, or whose Extra map would shadow a named field. This
// is deliberate: an audit log whose required fields cannot be trusted is
// worse than an error the caller sees in its tests.
//
// The log must never be written to the process's standard output, which
// carries the MCP protocol on a stdio proxy; Open refuses such paths.
package audit
