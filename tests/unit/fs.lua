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


-- Records of a run directory (issue 21): never through a link, never from a device, a FIFO or
-- another user's file, never more than a bounded size; each refusal names the file.
do
  local rdir = dir .. "/records"
  fs.mkdir_p(rdir)
  local rec = rdir .. "/r.json"
  fs.write_atomic(rec, "0123456789")
  tap.is({ fs.read_record(rec) }, { "0123456789", false }, "read_record: the whole record, nothing more")
  tap.is({ fs.read_record(rec, 4, 3) }, { "456", true }, "from an offset, at most max bytes, and says there is more")
  tap.is({ fs.read_record(rec, 7, 3) }, { "789", false }, "exactly to the end: nothing more")
  tap.is(fs.RECORD_MAX, 16 * 1024 * 1024, "the documented cap: 16 MiB")
  local absent_rec, merr, mno = fs.read_record(rdir .. "/none")
  tap.is({ absent_rec, mno }, { nil, 2 }, "a missing record: nil, ENOENT")
  tap.like(merr, "none: No such file", "naming it")

  local target = rdir .. "/target"
  fs.write_atomic(target, "mine\n")
  assert(fs.symlink(target, rdir .. "/link"))
  local got, link_why, link_errno = fs.read_record(rdir .. "/link")
  tap.is({ got, link_errno }, { nil, 40 }, "a link is not followed (ELOOP)")
  tap.like(link_why, "/link: a symbolic link, not a regular file %(refused%)", "and is named")
  tap.is({ fs.append_record(rdir .. "/link", "appended\n") },
    { nil, rdir .. "/link: a symbolic link, not a regular file (refused)", 40 }, "append_record refuses a link")
  tap.is({ fs.write_in_place(rdir .. "/link", "over") },
    { nil, rdir .. "/link: a symbolic link, not a regular file (refused)", 40 }, "so does write_in_place")
  tap.is(fs.read(target), "mine\n", "the link's target is untouched")

  assert(fs.symlink("/dev/zero", rdir .. "/zero"))
  tap.like(select(2, fs.read_record(rdir .. "/zero")), "zero: a symbolic link", "a link to /dev/zero: refused")
  tap.like(select(2, fs.read_record("/dev/zero")), "/dev/zero: a character device, not a regular file",
    "/dev/zero itself: a character device, refused at once")
  os.execute("mkfifo '" .. rdir .. "/fifo'")
  tap.like(select(2, fs.read_record(rdir .. "/fifo")), "fifo: a FIFO, not a regular file",
    "a FIFO with no writer: refused, not waited on")
  tap.like(select(2, fs.append_record(rdir .. "/fifo", "x")), "fifo: a FIFO or a device, not a regular file",
    "append_record too")
  tap.like(select(2, fs.read_record(rdir)), "records: a directory, not a regular file", "a directory")

  tap.ok(fs.append_record(rdir .. "/journal", "one\n"), "append_record makes a missing journal")
  tap.ok(fs.append_record(rdir .. "/journal", "two\n"), "and appends")
  tap.is(fs.read(rdir .. "/journal"), "one\ntwo\n", "both lines")
  tap.ok(fs.append_record(rdir .. "/journal", "three\n", false), "create = false appends to a journal there")
  -- write_atomic of a list: its strings one after the other, through the buffer and past it
  local long = string.rep("b", 70000)
  tap.ok(fs.write_atomic(rdir .. "/parts", { "a", "", long, "c\n", 7 }, false), "write_atomic takes a list")
  tap.is(fs.read(rdir .. "/parts"), "a" .. long .. "c\n7", "written in order, nothing lost or doubled")
  tap.is(select(2, pcall(fs.write_atomic, rdir .. "/parts", { "a", {} })),
    "write_atomic: item 2 of the list is not a string", "an item that is not a string: an error")
  tap.is(fs.read(rdir .. "/parts"), "a" .. long .. "c\n7", "and the file untouched")
  tap.is({ fs.append_record(rdir .. "/gone", "x\n", false) }, { nil, rdir .. "/gone: No such file or directory", 2 },
    "but never makes one that is gone")
  tap.is(fs.stat(rdir .. "/gone"), nil, "(nothing made)")

  -- a planted link at an atomic write's temporary name is not written through
  local victim = rdir .. "/victim"
  fs.write_atomic(victim, "intact\n")
  assert(fs.symlink(victim, rdir .. "/w.json.tmp." .. require("jobrun.c.process").getpid()))
  tap.is(fs.write_atomic(rdir .. "/w.json", "new", false), nil, "write_atomic will not write through a planted link")
  tap.is(fs.read(victim), "intact\n", "its target untouched")

  if os.execute("test $(id -u) = 0") then
    local theirs = rdir .. "/theirs"
    fs.write_atomic(theirs, "{}")
    os.execute("chown 12345 '" .. theirs .. "'")
    tap.like(select(2, fs.read_record(theirs)), "theirs: owned by uid 12345, not by the runner %(uid 0%)",
      "another user's file: refused")
  else
    tap.ok(true, "# skip chown needs root")
  end
end

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
