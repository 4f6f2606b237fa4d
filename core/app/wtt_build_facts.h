/*
 * wtt_build_facts.h: what this program was built with and what it finds
 * at run time (the compiled-in backends and their devices), for
 * `wtt version` and wtt.runtime. It lives in the program layer because the
 * base layer's VM cannot know the engine (docs/architecture.md).
 */
#ifndef WTT_BUILD_FACTS_H
#define WTT_BUILD_FACTS_H

#include <lua.h>
#include <stdio.h>

/* Adds `backends` ({ "cpu", ... }), `sanitized` (built with ASan) and
 * `cuda` ({ compiled = bool, and,
 * when compiled, devices = { ... } looked up on first read }) to the
 * wtt.runtime table on top of the stack (wtt_vm_set_runtime_facts). */
void wtt_runtime_facts(lua_State *L);

/* Prints `wtt version`: the version line with the backends, then one line
 * per device backend saying what it found. */
void wtt_print_version(FILE *out);

#endif
