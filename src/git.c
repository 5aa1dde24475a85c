/* Git primitives over libgit2: enough to know what a run was launched from (commit, branch,
 * dirty paths, upstream) and whether a commit has been pushed. No git subprocess. Policy —
 * what "clean" or "pushed" means for a suite — lives in lua/jobrun/base/git.lua.
 *
 *   git.open([path]) -> Repo | nil, err        (the repository git would use from path, or from
 *                                                here: see git_open)
 *   repo:head() -> { commit, branch, detached, unborn }
 *   repo:status() -> { {path, untracked = bool}, … }    (ignored files left out)
 *   repo:upstream() -> { name, remote, commit } | nil   (of the current branch)
 *   repo:ahead_behind(local, upstream) -> ahead, behind
 *   repo:contains(tip, commit) -> bool                  (commit is tip or an ancestor of it)
 *   repo:remote_branches() -> { {name, commit}, … }
 *   repo:remote_url(name) -> url | nil
 *   repo:workdir() -> path | nil */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <git2.h>
#include <lauxlib.h>
#include <lua.h>

#include "dl.h"
#include "host.h"

/* libgit2 is loaded on first use (src/dl.h). */
#define LIBGIT2_FUNCS(X) \
    X(git_branch_iterator_free) \
    X(git_branch_iterator_new) \
    X(git_branch_next) \
    X(git_branch_remote_name) \
    X(git_branch_upstream) \
    X(git_buf_dispose) \
    X(git_error_last) \
    X(git_graph_ahead_behind) \
    X(git_graph_descendant_of) \
    X(git_libgit2_init) \
    X(git_oid_equal) \
    X(git_oid_fromstr) \
    X(git_oid_tostr) \
    X(git_reference_free) \
    X(git_reference_is_branch) \
    X(git_reference_lookup) \
    X(git_reference_name) \
    X(git_reference_name_to_id) \
    X(git_reference_shorthand) \
    X(git_reference_symbolic_target) \
    X(git_reference_target) \
    X(git_remote_free) \
    X(git_remote_lookup) \
    X(git_remote_url) \
    X(git_repository_free) \
    X(git_repository_head) \
    X(git_repository_head_detached) \
    X(git_repository_head_unborn) \
    X(git_repository_is_bare) \
    X(git_repository_open_ext) \
    X(git_repository_path) \
    X(git_repository_set_workdir) \
    X(git_repository_workdir) \
    X(git_status_byindex) \
    X(git_status_list_entrycount) \
    X(git_status_list_free) \
    X(git_status_list_new) \
    X(git_status_options_init)
JOBRUN_DL_DECLARE(LIBGIT2_FUNCS)
JOBRUN_DL_LIB(LIBGIT2_FUNCS, libgit2, JOBRUN_GIT2_SONAME)

#define REPO_HANDLE "jobrun.base.git.repo"

typedef struct {
    git_repository *repo; /* NULL once closed */
} Repo;

/* nil, "what: libgit2's message". Not luaL_fileresult: libgit2 reports no errno. */
static int git_failure(lua_State *L, const char *what) {
    const git_error *e = p_git_error_last();
    lua_pushnil(L);
    lua_pushfstring(L, "%s: %s", what, e && e->message ? e->message : "unknown libgit2 error");
    return 2;
}

static git_repository *check_repo(lua_State *L) {
    Repo *r = (Repo *)luaL_checkudata(L, 1, REPO_HANDLE);
    if (!r->repo) luaL_error(L, "attempt to use a closed repository");
    return r->repo;
}

static void push_oid(lua_State *L, const git_oid *oid) {
    char hex[GIT_OID_HEXSZ + 1];
    p_git_oid_tostr(hex, sizeof hex, oid);
    lua_pushstring(L, hex);
}

static int check_oid(lua_State *L, int arg, git_oid *oid) {
    const char *hex = luaL_checkstring(L, arg);
    if (p_git_oid_fromstr(oid, hex) != 0) return luaL_argerror(L, arg, "not a commit id");
    return 0;
}

static int git_open(lua_State *L) {
    const char *path = luaL_optstring(L, 1, NULL);
    const char *why = jobrun_dl_load(&libgit2);
    if (why) return luaL_error(L, "libgit2 is not available (%s)", why);
    static int initialised;
    if (!initialised) { p_git_libgit2_init(); initialised = 1; }
    Repo *r = (Repo *)lua_newuserdatauv(L, sizeof *r, 0);
    r->repo = NULL;
    luaL_setmetatable(L, REPO_HANDLE);
    /* The repository and work tree git itself would use, so that the state directory and the
     * guard find the same root (README "State on disk"): $GIT_DIR when no path is given,
     * else a search upward from path (a `.git` file followed) that stops at
     * GIT_CEILING_DIRECTORIES and at a file system boundary unless
     * GIT_DISCOVERY_ACROSS_FILESYSTEM; then GIT_WORK_TREE. Not libgit2's OPEN_FROM_ENV: it
     * refuses GIT_WORK_TREE. */
    const char *git_dir = path ? NULL : getenv("GIT_DIR");
    const char *work_tree = getenv("GIT_WORK_TREE");
    const char *across = getenv("GIT_DISCOVERY_ACROSS_FILESYSTEM");
    int rc;
    if (git_dir && *git_dir) {
        rc = p_git_repository_open_ext(&r->repo, git_dir,
                                       GIT_REPOSITORY_OPEN_NO_SEARCH | GIT_REPOSITORY_OPEN_NO_DOTGIT, NULL);
    } else {
        unsigned flags = across && (strcmp(across, "1") == 0 || strcasecmp(across, "true") == 0 ||
                                    strcasecmp(across, "yes") == 0 || strcasecmp(across, "on") == 0)
                             ? GIT_REPOSITORY_OPEN_CROSS_FS : 0;
        rc = p_git_repository_open_ext(&r->repo, path ? path : ".", flags, getenv("GIT_CEILING_DIRECTORIES"));
    }
    if (rc != 0) return git_failure(L, path ? path : git_dir && *git_dir ? git_dir : ".");
    if (work_tree && *work_tree) {
        /* (libgit2 1.5 leaks when told the work tree it has: tell it only of another) */
        char real[PATH_MAX];
        const char *now = p_git_repository_workdir(r->repo);
        size_t len = realpath(work_tree, real) ? strlen(real) : 0;
        int same = now && len > 0 && strncmp(now, real, len) == 0 && strcmp(now + len, "/") == 0;
        if (!same && p_git_repository_set_workdir(r->repo, work_tree, 0) != 0) return git_failure(L, work_tree);
    }
    return 1;
}

static int repo_head(lua_State *L) {
    git_repository *repo = check_repo(L);
    lua_createtable(L, 0, 4);
    int unborn = p_git_repository_head_unborn(repo) == 1;
    int detached = p_git_repository_head_detached(repo) == 1;
    lua_pushboolean(L, unborn);
    lua_setfield(L, -2, "unborn");
    lua_pushboolean(L, detached);
    lua_setfield(L, -2, "detached");
    git_reference *head = NULL;
    if (unborn) {
        /* No commit yet: HEAD still names the branch to be born. */
        if (p_git_reference_lookup(&head, repo, "HEAD") == 0) {
            const char *target = p_git_reference_symbolic_target(head);
            if (target && strncmp(target, "refs/heads/", 11) == 0) {
                lua_pushstring(L, target + 11);
                lua_setfield(L, -2, "branch");
            }
            p_git_reference_free(head);
        }
        return 1;
    }
    if (p_git_repository_head(&head, repo) != 0) return git_failure(L, "HEAD");
    git_oid oid;
    if (p_git_reference_name_to_id(&oid, repo, "HEAD") == 0) {
        push_oid(L, &oid);
        lua_setfield(L, -2, "commit");
    }
    if (!detached && p_git_reference_is_branch(head)) {
        lua_pushstring(L, p_git_reference_shorthand(head));
        lua_setfield(L, -2, "branch");
    }
    p_git_reference_free(head);
    return 1;
}

static int repo_status(lua_State *L) {
    git_repository *repo = check_repo(L);
    if (p_git_repository_is_bare(repo)) { lua_newtable(L); return 1; }
    git_status_options opts;
    p_git_status_options_init(&opts, GIT_STATUS_OPTIONS_VERSION);
    opts.show = GIT_STATUS_SHOW_INDEX_AND_WORKDIR;
    opts.flags = GIT_STATUS_OPT_INCLUDE_UNTRACKED | GIT_STATUS_OPT_RECURSE_UNTRACKED_DIRS |
                 GIT_STATUS_OPT_EXCLUDE_SUBMODULES;
    git_status_list *list = NULL;
    if (p_git_status_list_new(&list, repo, &opts) != 0) return git_failure(L, "status");
    size_t n = p_git_status_list_entrycount(list);
    lua_createtable(L, (int)n, 0);
    int out = 0;
    for (size_t i = 0; i < n; i++) {
        const git_status_entry *e = p_git_status_byindex(list, i);
        if (e->status == GIT_STATUS_CURRENT || (e->status & GIT_STATUS_IGNORED)) continue;
        const git_diff_delta *d = e->index_to_workdir ? e->index_to_workdir : e->head_to_index;
        const char *path = d ? (d->new_file.path ? d->new_file.path : d->old_file.path) : "?";
        lua_createtable(L, 0, 2);
        lua_pushstring(L, path);
        lua_setfield(L, -2, "path");
        lua_pushboolean(L, e->status == GIT_STATUS_WT_NEW);
        lua_setfield(L, -2, "untracked");
        lua_rawseti(L, -2, ++out);
    }
    p_git_status_list_free(list);
    return 1;
}

static int repo_upstream(lua_State *L) {
    git_repository *repo = check_repo(L);
    git_reference *head = NULL, *upstream = NULL;
    if (p_git_repository_head(&head, repo) != 0 || !p_git_reference_is_branch(head)) {
        p_git_reference_free(head);
        lua_pushnil(L);
        return 1;
    }
    int rc = p_git_branch_upstream(&upstream, head);
    if (rc != 0) {
        p_git_reference_free(head);
        if (rc == GIT_ENOTFOUND) { lua_pushnil(L); return 1; }
        return git_failure(L, "upstream");
    }
    lua_createtable(L, 0, 3);
    lua_pushstring(L, p_git_reference_shorthand(upstream));
    lua_setfield(L, -2, "name");
    git_buf remote = GIT_BUF_INIT;
    if (p_git_branch_remote_name(&remote, repo, p_git_reference_name(upstream)) == 0) {
        lua_pushlstring(L, remote.ptr, remote.size);
        lua_setfield(L, -2, "remote");
        p_git_buf_dispose(&remote);
    }
    const git_oid *oid = p_git_reference_target(upstream);
    if (oid) {
        push_oid(L, oid);
        lua_setfield(L, -2, "commit");
    }
    p_git_reference_free(upstream);
    p_git_reference_free(head);
    return 1;
}

static int repo_ahead_behind(lua_State *L) {
    git_repository *repo = check_repo(L);
    git_oid local, upstream;
    check_oid(L, 2, &local);
    check_oid(L, 3, &upstream);
    size_t ahead = 0, behind = 0;
    if (p_git_graph_ahead_behind(&ahead, &behind, repo, &local, &upstream) != 0) return git_failure(L, "ahead/behind");
    lua_pushinteger(L, (lua_Integer)ahead);
    lua_pushinteger(L, (lua_Integer)behind);
    return 2;
}

static int repo_contains(lua_State *L) {
    git_repository *repo = check_repo(L);
    git_oid tip, commit;
    check_oid(L, 2, &tip);
    check_oid(L, 3, &commit);
    if (p_git_oid_equal(&tip, &commit)) { lua_pushboolean(L, 1); return 1; }
    int rc = p_git_graph_descendant_of(repo, &tip, &commit);
    if (rc < 0) return git_failure(L, "contains");
    lua_pushboolean(L, rc == 1);
    return 1;
}

static int repo_remote_branches(lua_State *L) {
    git_repository *repo = check_repo(L);
    git_branch_iterator *it = NULL;
    if (p_git_branch_iterator_new(&it, repo, GIT_BRANCH_REMOTE) != 0) return git_failure(L, "branches");
    lua_newtable(L);
    int i = 0;
    git_reference *ref = NULL;
    git_branch_t type;
    while (p_git_branch_next(&ref, &type, it) == 0) {
        const git_oid *oid = p_git_reference_target(ref);
        if (oid) { /* symbolic refs such as origin/HEAD have none */
            lua_createtable(L, 0, 2);
            lua_pushstring(L, p_git_reference_shorthand(ref));
            lua_setfield(L, -2, "name");
            push_oid(L, oid);
            lua_setfield(L, -2, "commit");
            lua_rawseti(L, -2, ++i);
        }
        p_git_reference_free(ref);
    }
    p_git_branch_iterator_free(it);
    return 1;
}

static int repo_remote_url(lua_State *L) {
    git_repository *repo = check_repo(L);
    const char *name = luaL_checkstring(L, 2);
    git_remote *remote = NULL;
    if (p_git_remote_lookup(&remote, repo, name) != 0) { lua_pushnil(L); return 1; }
    const char *url = p_git_remote_url(remote);
    if (url) lua_pushstring(L, url);
    else lua_pushnil(L);
    p_git_remote_free(remote);
    return 1;
}

static int repo_workdir(lua_State *L) {
    const char *dir = p_git_repository_workdir(check_repo(L));
    if (dir) lua_pushstring(L, dir);
    else lua_pushnil(L);
    return 1;
}

static int repo_close(lua_State *L) {
    Repo *r = (Repo *)luaL_checkudata(L, 1, REPO_HANDLE);
    if (r->repo) {
        p_git_repository_free(r->repo);
        r->repo = NULL;
    }
    return 0;
}

static int repo_tostring(lua_State *L) {
    Repo *r = (Repo *)luaL_checkudata(L, 1, REPO_HANDLE);
    if (!r->repo) { lua_pushliteral(L, "git repository (closed)"); return 1; }
    const char *dir = p_git_repository_workdir(r->repo);
    lua_pushfstring(L, "git repository (%s)", dir ? dir : p_git_repository_path(r->repo));
    return 1;
}

static const luaL_Reg repo_methods[] = {
    {"head", repo_head},
    {"status", repo_status},
    {"upstream", repo_upstream},
    {"ahead_behind", repo_ahead_behind},
    {"contains", repo_contains},
    {"remote_branches", repo_remote_branches},
    {"remote_url", repo_remote_url},
    {"workdir", repo_workdir},
    {"close", repo_close},
    {NULL, NULL},
};

static const luaL_Reg repo_meta[] = {
    {"__gc", repo_close},
    {"__close", repo_close},
    {"__tostring", repo_tostring},
    {NULL, NULL},
};

static const luaL_Reg git_functions[] = {
    {"open", git_open},
    {NULL, NULL},
};

int luaopen_jobrun_git(lua_State *L) {
    jobrun_class(L, REPO_HANDLE, repo_meta, repo_methods);
    luaL_newlib(L, git_functions);
    return 1;
}
