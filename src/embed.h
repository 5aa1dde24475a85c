#ifndef JOBRUN_EMBED_H
#define JOBRUN_EMBED_H
#include <stddef.h>

struct jobrun_embedded {
    const char *name;      /* module name, e.g. "jobrun.cli" */
    const char *chunkname; /* "@lua/jobrun/cli/init.lua", so tracebacks name the real file */
    const unsigned char *source;
    size_t length;
    const unsigned char *bytecode; /* the source compiled at build time (debug information kept) */
    size_t bytecode_length;
};

/* Terminated by an entry whose name is NULL. */
extern const struct jobrun_embedded jobrun_embedded[];

#endif
