/*
 * wtt_reload.h: generations of route and plugin code, for hot reload.
 *
 * A generation is an immutable snapshot of every file under routes/ and
 * plugins/ (path, kind, source, SHA-256), numbered from 1. A reload reads the
 * files, builds them in a fresh Lua state and publishes the new generation
 * only when everything builds; any failure leaves the active generation as it
 * was and is kept as "last failure" (file, line, message, when). Threads that
 * serve requests compare wtt_reload_current_id() with the generation they run
 * and rebuild their own state from the snapshot at their next request, so no
 * thread ever reads a file the validator did not see.
 *
 * Thread safety: every function here may be called from any thread.
 */
#ifndef WTT_RELOAD_H
#define WTT_RELOAD_H

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

struct wtt_generation;

/*
 * Loads the first generation. Returns 0, or -1 with the reason in `err`
 * (the same text that is logged).
 */
int wtt_reload_init(char *err, size_t errlen);

/* Reloads refused (a generation that did not build) since start. */
uint64_t wtt_reload_failures(void);

/* Id of the active generation (0 before wtt_reload_init); lock-free. */
uint64_t wtt_reload_current_id(void);

/*
 * Returns the active generation with a reference the caller must drop with
 * wtt_reload_release(), or NULL before wtt_reload_init.
 */
struct wtt_generation *wtt_reload_acquire(void);
void wtt_reload_release(struct wtt_generation *g);
uint64_t wtt_reload_id(const struct wtt_generation *g);

/*
 * Builds generation `g` in state `L`: calls require("wtt.server").new(files)
 * and leaves the dispatch table it returns on the stack. Returns 0, or -1
 * with nothing pushed and the reason in `err`.
 */
int wtt_reload_build(lua_State *L, struct wtt_generation *g, char *err, size_t errlen);

/*
 * Scans, validates and publishes a new generation. `reason` is logged
 * ("sighup", "admin", ...). Returns the new id, or 0 with the failure in
 * `err` (and recorded as the last failure); the active generation is then
 * unchanged.
 */
uint64_t wtt_reload_apply(const char *reason, char *err, size_t errlen);

/*
 * Makes the previous generation active again (as a new id, so every thread
 * switches). Returns the new id, or 0 with `err` when there is none.
 */
uint64_t wtt_reload_rollback(char *err, size_t errlen);

/*
 * Pushes the reload record: { active = gen, previous = gen|nil,
 * last_failure = { file, line, message, at, reason } | nil } where gen is
 * { id, loaded_at, sha256, files = { [path] = sha256 } }.
 */
void wtt_reload_push_record(lua_State *L);

#endif
