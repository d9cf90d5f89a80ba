// Internal to src/redis: what every script body is built with (the shared
// Lua helpers it uses are prepended to it) and how each script's accessor is
// defined. scripts.h lists the scripts and their contracts.
#pragma once

#include "redis/lua_script.h"

namespace sluice::redis::scripts {

// A script named `name`: the shared helpers (script_prelude.cc) that
// `body` names, directly or through another helper, in their order there,
// then `body`. (Each helper is a closure made on every call of the script,
// and garbage after it: a script carries only those it uses. Names are
// looked for outside comment lines.)
LuaScript WithPrelude(const char* name, const char* body);

}  // namespace sluice::redis::scripts

// Defines `const LuaScript& Fn()` for scripts.h: built on first use, never
// destroyed (threads still running during exit may use it).
#define SLUICE_SCRIPT(Fn, body)                                             \
  const LuaScript& Fn() {                                                   \
    static const LuaScript* script = new LuaScript(WithPrelude(#Fn, body)); \
    return *script;                                                         \
  }
