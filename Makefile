# jobrun — see README.md. `make run` sets up, builds and runs the quickstart; `make test` tests.
PREFIX   ?= /usr/local
DESTDIR  ?=
VERSION  := 0.1.0
CC       ?= cc
PKGS     := lua5.4 libcurl libgit2 yaml-0.1 sqlite3
CFLAGS   ?= -O2 -g
CFLAGS   += -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Isrc -Ibuild \
            -DJOBRUN_VERSION='"$(VERSION)"'
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
# libcurl, libgit2 and libsqlite3 are loaded when first used (src/http.c, src/git.c, src/sqlite.c),
# by the sonames of the -dev packages' libraries, so that a jobrun that needs none starts without them.
LIBDIR     = $(shell pkg-config --variable=libdir lua5.4 2>/dev/null)
SONAME     = $(shell objdump -p $(LIBDIR)/$(1) 2>/dev/null | sed -n 's/^ *SONAME *//p')
CFLAGS    += -DJOBRUN_CURL_SONAME='"$(or $(call SONAME,libcurl.so),libcurl.so.4)"' \
             -DJOBRUN_GIT2_SONAME='"$(or $(call SONAME,libgit2.so),libgit2.so)"' \
             -DJOBRUN_MHD_SONAME='"$(or $(call SONAME,libmicrohttpd.so),libmicrohttpd.so.12)"' \
             -DJOBRUN_SQLITE_SONAME='"$(or $(call SONAME,libsqlite3.so),libsqlite3.so.0)"'
PKG_LIBS   = $(shell pkg-config --libs lua5.4 2>/dev/null)
CJSON_LIB  = $(LIBDIR)/liblua5.4-cjson.a
# libyaml (src/yaml.c) is linked in whole, as lua-cjson is: nothing to load at run time.
YAML_LIB   = $(or $(shell pkg-config --variable=libdir yaml-0.1 2>/dev/null),$(LIBDIR))/libyaml.a
LIBS       = $(CJSON_LIB) $(YAML_LIB) $(PKG_LIBS) -ldl -lm
ASAN_FLAGS = -O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

LUA_FILES := $(shell find lua -name '*.lua' | LC_ALL=C sort)
HOST_SRC  := src/host.c src/handle.c src/io.c src/embed.c src/fs.c src/term.c src/process.c src/scan.c src/dl.c src/git.c src/http.c \
             src/guard.c src/yaml.c src/json.c src/metrics.c src/serve.c src/sqlite.c
HEADERS   := $(wildcard src/*.h)

# Debian packages: to build, and what the tests use on top.
BUILD_DEPS := gcc make pkg-config liblua5.4-dev lua-cjson-dev libcurl4-openssl-dev libgit2-dev libyaml-dev libsqlite3-dev \
              libmicrohttpd-dev
# clang for the fuzz targets; its libFuzzer runtime is a Recommends, which deps.sh does not follow.
TEST_DEPS  := lua-check libxml2-utils git python3 slurm-wlm munge clang libclang-rt-14-dev slurmdbd \
              mariadb-server curl chromium

.PHONY: all run test deps test-deps install clean asan fuzz bench

all: jobrun share/jobrun-meta.lua

deps:
	@sh scripts/deps.sh $(BUILD_DEPS)

test-deps:
	@sh scripts/deps.sh $(BUILD_DEPS) $(TEST_DEPS)

build/embedgen: src/embedgen.c
	@mkdir -p build
	$(CC) -O2 -Wall -Wextra -Werror $(PKG_CFLAGS) -o $@ $< $(PKG_LIBS) -lm -ldl

build/embedded.c: build/embedgen $(LUA_FILES)
	build/embedgen $@ $(LUA_FILES)

jobrun: $(HOST_SRC) src/main.c build/embedded.c $(HEADERS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(HOST_SRC) src/main.c build/embedded.c $(LIBS)

# The Lua language server's annotations of the suite DSL, generated from lua/jobrun/suite/schema.lua
# (committed, so that editors find them without a build; tests/unit/meta.lua checks they are current).
share/jobrun-meta.lua: jobrun
	@mkdir -p share
	./jobrun __meta > $@.tmp && mv $@.tmp $@

build/luarun: $(HOST_SRC) tests/luarun.c build/embedded.c $(HEADERS)
	$(CC) $(CFLAGS) $(PKG_CFLAGS) -o $@ $(HOST_SRC) tests/luarun.c build/embedded.c $(LIBS)

# The same programs built with AddressSanitizer + UndefinedBehaviorSanitizer.
build/asan/jobrun: $(HOST_SRC) src/main.c build/embedded.c $(HEADERS)
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(ASAN_FLAGS) $(PKG_CFLAGS) -o $@ $(HOST_SRC) src/main.c build/embedded.c $(LIBS)

build/asan/luarun: $(HOST_SRC) tests/luarun.c build/embedded.c $(HEADERS)
	@mkdir -p build/asan
	$(CC) $(CFLAGS) $(ASAN_FLAGS) $(PKG_CFLAGS) -o $@ $(HOST_SRC) tests/luarun.c build/embedded.c $(LIBS)

asan: build/asan/jobrun build/asan/luarun

# libFuzzer targets (tests/fuzz/, run by tests/fuzz.sh): clang, with ASan + UBSan. The scanner's
# chunk and block sizes are made tiny so that small inputs cross every boundary.
FUZZ_CC    ?= clang
FUZZ_FLAGS  = -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined \
              -fno-omit-frame-pointer
FUZZ_SIZES  = -DCHUNK=64u -DMAX_LINE=16 -DBACK_BLOCK=16u -DBACK_BLOCK_MAX=64u -DBACK_WINDOW=256u
FUZZ_CFLAGS = $(filter-out -O2,$(CFLAGS)) $(FUZZ_FLAGS) $(PKG_CFLAGS)

build/fuzz/scan_fuzz: tests/fuzz/scan_fuzz.c src/scan.c src/io.c $(HEADERS)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SIZES) -o $@ tests/fuzz/scan_fuzz.c src/scan.c src/io.c $(PKG_LIBS) -lm

build/fuzz/metrics_fuzz: tests/fuzz/metrics_fuzz.c src/metrics.c src/scan.c src/io.c src/handle.c $(HEADERS)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) $(FUZZ_SIZES) -o $@ tests/fuzz/metrics_fuzz.c src/metrics.c src/scan.c src/io.c src/handle.c $(PKG_LIBS) -lm

build/fuzz/json_fuzz: tests/fuzz/json_fuzz.c $(HOST_SRC) build/embedded.c $(HEADERS)
	@mkdir -p build/fuzz
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $(HOST_SRC) tests/fuzz/json_fuzz.c build/embedded.c $(LIBS)

fuzz: build/fuzz/scan_fuzz build/fuzz/json_fuzz build/fuzz/metrics_fuzz

# The quickstart, with its HTML report in the state directory (jobrun prints the page's path).
run: deps jobrun
	./jobrun run examples/quickstart.lua --grid --html "$${JOBRUN_STATE_DIR:-.jobrun}/quickstart.html"

# The browser tests' driver, puppeteer-core, pinned by tests/browser/package-lock.json (from npm;
# Debian's npm when there is none). Without it those tests are skipped, saying so.
tests/browser/node_modules/.package-lock.json: tests/browser/package-lock.json
	@command -v npm >/dev/null 2>&1 || sh scripts/deps.sh npm
	cd tests/browser && npm ci --no-audit --no-fund --loglevel=error || echo "jobrun: npm ci failed: the browser tests will be skipped" >&2

test: test-deps jobrun build/luarun asan tests/browser/node_modules/.package-lock.json
	sh tests/slurm/cluster.sh start
	SLURM_CONF=$$(sh tests/slurm/cluster.sh env | sed 's/^export SLURM_CONF=//') \
	  prove -j2 --exec tests/exec tests/integration/*slurm*.lua tests/unit/*.lua \
	  $$(ls tests/integration/*.lua | grep -v slurm) tests/cli/*.t tests/asan.sh tests/fuzz.sh tests/lint.sh

bench: jobrun
	sh bench/plan.sh

install: jobrun share/jobrun-meta.lua
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 0755 jobrun $(DESTDIR)$(PREFIX)/bin/jobrun

clean:
	rm -rf build jobrun
