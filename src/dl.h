/* Libraries loaded on first use, by soname: libcurl (src/http.c) and libgit2 (src/git.c).
 * Linked in, their dependencies would cost every jobrun process milliseconds before main(),
 * whether it needs them or not. */
#ifndef JOBRUN_DL_H
#define JOBRUN_DL_H

#include <stddef.h>

typedef struct {
    const char *soname;
    const char *const *names; /* the symbols to resolve ... */
    void **const *slots;      /* ... and where each one's address goes */
    size_t count;
    void *handle;             /* set once loaded */
    const char *failed;       /* set once loading failed: why (loading is not tried again) */
    char why[256];
} JobrunLib;

/* jobrun_dl_load(lib) -> NULL once lib is loaded and every symbol resolved, else why not. */
const char *jobrun_dl_load(JobrunLib *lib);

/* A library's table from an X-macro listing its functions, each reached through p_<name>:
 *   #define FUNCS(X) X(curl_easy_init) X(curl_easy_cleanup)
 *   JOBRUN_DL_DECLARE(FUNCS)            -- static pointers p_curl_easy_init, ...
 *   JOBRUN_DL_LIB(FUNCS, curl, SONAME)  -- static JobrunLib curl */
#define JOBRUN_DL_POINTER(name) static __typeof__(name) *p_##name;
#define JOBRUN_DL_NAME(name) #name,
#define JOBRUN_DL_SLOT(name) (void **)&p_##name,
#define JOBRUN_DL_DECLARE(FUNCS) FUNCS(JOBRUN_DL_POINTER)
#define JOBRUN_DL_LIB(FUNCS, var, so)                                                     \
    static const char *const var##_names[] = {FUNCS(JOBRUN_DL_NAME)};                    \
    static void **const var##_slots[] = {FUNCS(JOBRUN_DL_SLOT)};                         \
    static JobrunLib var = {so, var##_names, var##_slots,                                \
                            sizeof var##_names / sizeof var##_names[0], NULL, NULL, ""};

#endif
