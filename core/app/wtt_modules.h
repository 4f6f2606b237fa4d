/*
 * wtt_modules.h: the C modules a wtt state can `require`.
 *
 * The program's one list of built-in modules. It lives in the program layer
 * (core/app/) because it names every binding; the VM (core/base/) only
 * receives it through wtt_vm_set_modules(), so the base layer links without
 * any binding (docs/architecture.md).
 */
#ifndef WTT_MODULES_H
#define WTT_MODULES_H

#include <lauxlib.h>

/* { name, luaopen } pairs ending in { NULL, NULL }. */
extern const luaL_Reg wtt_builtin_modules[];

#endif
