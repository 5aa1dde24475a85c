-- The fs primitives, exercised from Lua on a real directory.
local tap = require "tap"
local fs = require "jobrun.c.fs"

local dir = require("helpers").scratch() .. "/fs" -- not made yet: mkdir_p makes it

tap.ok(fs.mkdir_p(dir .. "/a/b/c"), "mkdir_p makes every level")
tap.ok(fs.mkdir_p(dir .. "/a/b/c"), "mkdir_p of an existing directory is fine")
tap.is(fs.stat(dir .. "/a/b").type, "directory", "stat type")

local path = dir .. "/a/f.txt"
tap.ok(fs.write_atomic(path, "one\ntwo\n"), "write_atomic")
tap.is(fs.read(path), "one\ntwo\n", "read back")
tap.ok(fs.write_atomic(path, "three"), "overwrite")
tap.is(fs.read(path), "three", "replaced whole")
local entries = fs.list(dir .. "/a")
table.sort(entries)
tap.is(entries, { "b", "f.txt" }, "no temp file left behind")

local big = string.rep("0123456789", 100000)
fs.write_atomic(path, big)
local tail, offset = fs.read_tail(path, 15)
tap.is({ tail, offset }, { "567890123456789", #big - 15 }, "read_tail reads only the end")
tap.is({ fs.read_tail(path, 10 ^ 7) }, { big, 0 }, "read_tail of more than the file")

fs.append(path .. ".log", "a")
fs.append(path .. ".log", "b\n")
tap.is(fs.read(path .. ".log"), "ab\n", "append")

local missing, err, errno = fs.read(dir .. "/nope")
tap.is(missing, nil, "read of a missing file")
tap.like(err, "nope: No such file or directory", "says why, with the path")
tap.is(errno, 2, "and the errno, as liolib's results")
tap.is(fs.strerror(errno), "No such file or directory", "strerror")

-- write_in_place: over the start of an existing file, never creating, truncating or replacing it.
local placed = dir .. "/placed"
fs.write_atomic(placed, "0123456789")
tap.ok(fs.write_in_place(placed, "abc"), "write_in_place")
tap.is(fs.read(placed), "abc3456789", "the rest of the file stays")
tap.ok(fs.write_in_place(placed, "ABCDEFGHIJKL"), "a longer write grows the file")
tap.is(fs.read(placed), "ABCDEFGHIJKL", "grown")
local none, why_none, no_errno = fs.write_in_place(dir .. "/absent", "x")
tap.is({ none, no_errno }, { nil, 2 }, "a missing file is not created")
tap.like(why_none, "absent: No such file or directory", "and says why")
tap.is(fs.stat(dir .. "/absent"), nil, "nothing created")
-- read from an offset (the local backend reads a slot's journal from where it left off)
tap.is(fs.read(placed, 3), "DEFGHIJKL", "read from an offset")
tap.is(fs.read(placed, 100), "", "an offset past the end: nothing")
-- link: a second name for a file, exclusive
tap.is(fs.link(placed, dir .. "/placed2"), true, "link")
tap.is(fs.read(dir .. "/placed2"), "ABCDEFGHIJKL", "the same file")
tap.is(fs.link(placed, dir .. "/placed2"), false, "a name that exists is not replaced")
local nl, nl_why = fs.link(dir .. "/absent", dir .. "/placed3")
tap.is(nl, nil, "linking a missing file fails")
tap.like(nl_why, "placed3: No such file or directory", "and says why")
tap.ok(not fs.mkdir_p(path .. "/x"), "mkdir_p under a file fails")
tap.ok(not fs.write_atomic(dir .. "/no/such/dir/f", "x"), "write_atomic into a missing directory fails")

local lock = assert(fs.lock(dir .. "/lock"))
tap.like(tostring(lock), "^lock %(.*/lock%)$", "__tostring")
local second, why = fs.lock(dir .. "/lock", false, true)
tap.is(second, nil, "a second exclusive lock does not block with nowait")
tap.like(why, "Resource temporarily unavailable", "and says it is held")
lock:release()
tap.like(tostring(lock), "released", "released handle says so")
do
  local scoped <close> = assert(fs.lock(dir .. "/lock", false, true))
  tap.ok(scoped, "lock free again after release")
end
tap.ok(fs.lock(dir .. "/lock", false, true), "__close released it")
tap.raises(function() fs.lock() end, "bad argument #1", "argument errors raise")

tap.is(fs.realpath(dir .. "/a/../a"), fs.realpath(dir .. "/a"), "realpath")
tap.ok(fs.getcwd():sub(1, 1) == "/", "getcwd")
tap.ok(fs.remove(path), "remove")
tap.is(fs.stat(path), nil, "gone")

-- symlink: made or replaced whole; a write through it lands in its target.
fs.mkdir_p(dir .. "/links")
tap.ok(fs.symlink("../target.log", dir .. "/links/l"), "symlink")
tap.ok(fs.append(dir .. "/links/l", "through\n"), "a write through a dangling link")
tap.is(fs.read(dir .. "/target.log"), "through\n", "created its target")
tap.ok(fs.symlink("../other.log", dir .. "/links/l"), "an existing link is replaced")
fs.append(dir .. "/links/l", "x")
tap.is(fs.read(dir .. "/other.log"), "x", "and points at the new target")
tap.is(#fs.list(dir .. "/links"), 1, "no temporary link left beside it")
local made, symlink_err = fs.symlink("t", dir .. "/absent/l")
tap.is(made, nil, "a missing directory fails")
tap.like(symlink_err, "absent/l: No such file", "naming the path")

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
