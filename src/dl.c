/* The lazy loader behind src/dl.h: dlopen by soname, then every symbol with dlsym. */
#include <dlfcn.h>
#include <stdio.h>

#include "dl.h"

const char *jobrun_dl_load(JobrunLib *lib) {
    if (lib->handle || lib->failed) return lib->failed;
    void *handle = dlopen(lib->soname, RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
        /* dlerror's text lasts only until the next dl call: keep a copy. */
        const char *why = dlerror();
        snprintf(lib->why, sizeof lib->why, "%s", why ? why : lib->soname);
        return lib->failed = lib->why;
    }
    for (size_t i = 0; i < lib->count; i++) {
        /* POSIX: a function's address survives the trip through void *. */
        if (!(*lib->slots[i] = dlsym(handle, lib->names[i]))) {
            snprintf(lib->why, sizeof lib->why, "missing symbol %s", lib->names[i]);
            for (size_t j = 0; j < i; j++) *lib->slots[j] = NULL;
            dlclose(handle);
            return lib->failed = lib->why;
        }
    }
    lib->handle = handle;
    return NULL;
}
