-- scan.last_lines: `tail -n`, read backwards from the end in bounded blocks, over-long lines cut.
local tap = require "tap"
local scan = require "jobrun.c.scan"
local fs = require "jobrun.c.fs"
local process = require "jobrun.c.process"

local dir = (os.getenv("TMPDIR") or "/tmp") .. "/jobrun-last-lines-test-" .. process.getpid()
assert(fs.mkdir_p(dir))
local file = dir .. "/log"

local function last(text, n, max)
  assert(fs.write_atomic(file, text, false))
  return (scan.last_lines(file, n, max or 1 << 30))
end

-- What `tail -n N` prints for the file.
local function tail_n(n)
  local out = dir .. "/tail.out"
  assert(os.execute(string.format("tail -n %d '%s' > '%s'", n, file, out)))
  return fs.read(out)
end

tap.test("the cases tail -n is known by", function()
  tap.is(last("", 5), "", "empty file")
  tap.is(last("a\nb\nc\n", 2), "b\nc\n", "the last two lines")
  tap.is(last("a\nb\nc\n", 0), "", "zero lines")
  tap.is(last("a\nb\nc\n", 10), "a\nb\nc\n", "N larger than the file: all of it")
  tap.is(last("a\nb\nc", 1), "c", "no trailing newline: the last line as it is")
  tap.is(last("a\nb\nc", 2), "b\nc", "no trailing newline, two lines")
  tap.is(last("only", 3), "only", "one line without a newline")
  tap.is(last("a\r\nb\r\nc\r\n", 2), "b\r\nc\r\n", "CRLF lines kept as they are")
  tap.is(last("\n\n\n", 2), "\n\n", "empty lines count")
  tap.is(last("x\n\n", 1), "\n", "an empty last line")
  local _, info = scan.last_lines(file, 1)
  tap.is(info, { size = 3, start = 2 }, "info: the file's size and where the lines start")
  local none, err = scan.last_lines(dir .. "/missing", 5)
  tap.ok(none == nil and err:find("missing: No such file", 1, true), "a missing file: nil, err", err)
  tap.raises(function() scan.last_lines(file, -1) end, "negative line count", "negative n")
end)

tap.test("very long lines are cut with a marker", function()
  local huge = string.rep("x", 102400)
  tap.is(last(huge .. "\nlast\n", 2, 4096), string.rep("x", 4096) .. "… [cut: 98,304 more bytes]\nlast\n",
    "a 100 KB line: its first 4096 bytes and how much was left out")
  tap.is(last("first\n" .. huge, 1, 4096), string.rep("x", 4096) .. "… [cut: 98,304 more bytes]",
    "a long last line without its newline")
  tap.ok(last(huge .. "\r\n", 1, 102401) == huge .. "\r\n", "a line of exactly max bytes (its CR too) is whole")
  tap.is(last(string.rep("é", 10) .. "\n", 1, 5), "éé… [cut: 16 more bytes]\n",
    "cut on a UTF-8 character boundary")
  local big = string.rep("y", 3 << 20) -- longer than a read block
  tap.is(last("a\n" .. big .. "\nb\n", 3, 10), "a\nyyyyyyyyyy… [cut: 3,145,718 more bytes]\nb\n",
    "a line longer than the read blocks, and the line before it")
end)

-- Issue 21: a lone "\r" (a progress bar's redraw) breaks lines for display, shown as "\n".
tap.test("a lone \\r is a line break", function()
  tap.is(last("a\rb\rc", 2), "b\nc", "two redraws of a bar with no \\n")
  tap.is(last("a\r\r\n", 1), "\r\n", "\\r then \\r\\n: the first breaks, the second ends the file")
  tap.is(last("a\r\r\n", 2), "a\n\r\n", "and both lines")
  tap.is(last("a\rb\r", 1), "b\n", "a final \\r ends the last line")
  local long = string.rep("x", 65535) .. "\r\nb"
  tap.is(last(long, 2), string.rep("x", 65535) .. "\r\nb", "\\r\\n across a block boundary stays one break")
end)

tap.test("the same as tail -n on random logs, across block boundaries", function()
  math.randomseed(11)
  local lengths = { 0, 1, 2, 100, 4095, 65535, 65536, 65537, 200000 }
  for round = 1, 30 do
    local parts = {}
    for i = 1, math.random(0, 40) do
      local len = lengths[math.random(#lengths)]
      parts[i] = string.rep(string.char(97 + i % 26), len) .. (math.random() < 0.1 and "\r\n" or "\n")
    end
    local text = table.concat(parts)
    if math.random() < 0.3 then text = text .. "tail without newline" end
    local n = math.random(0, 45)
    local got, want = last(text, n), tail_n(n)
    if not tap.ok(got == want, string.format("round %d: %d bytes, -n %d", round, #text, n),
      string.format("got %d bytes, tail -n gives %d", #got, #want)) then break end
  end
end)

-- scan.tail_lines and scan.strip: the reports' tail reader and the one escape stripper.
local function tl(text, n, opts)
  assert(fs.write_atomic(file, text, false))
  return scan.tail_lines(file, n, opts)
end

tap.test("scan.strip: CSI, OSC (BEL or ST), the string forms, nF and two-byte forms", function()
  tap.is(scan.strip("a\27[1;31mb\27[0mc\27[2Kd"), "abcd", "CSI, SGR included")
  tap.is(scan.strip("a\27[1;31mb\27[0m\27[2K", true), "a\27[1;31mb\27[0m", "SGR kept when asked, other CSI not")
  tap.is(scan.strip("\27]0;title\7x\27]8;;http://e\27\\y\27]8;;\27\\z"), "xyz", "OSC ended by BEL or ST")
  tap.is(scan.strip("\27Pq#0\27\\a\27_apc\27\\b"), "ab", "DCS and APC")
  tap.is(scan.strip("\27(Bx\27=y\27cz\27"), "xyz", "nF, two-byte forms, a lone ESC at the end")
  tap.is(scan.strip("\27]0;never ended"), "", "an unended OSC runs to the end")
  tap.is(scan.strip("\27]0;t\27[31mred"), "red", "an unended OSC ends where a new sequence starts")
  tap.is(scan.strip("bad \255 byte"), "bad \255 byte", "other bytes untouched")
end)

tap.test("scan.tail_lines: a terminal's view of the log's end", function()
  tap.is(tl("a\nb\nc\n", 2), { "b", "c" }, "the last two")
  tap.is(tl("a\n\n  \nb\n\n", 5), { "a", "b" }, "blank lines left out")
  tap.is(tl("a\n\n  \nb\n\n", 5, { blank = true }), { "a", "", "  ", "b" }, "kept with blank, but at the end")
  tap.is(tl("10%\r50%\r100%\r\nnext", 5), { "100%", "next" }, "a line is what follows its last \\r")
  tap.is(tl("\27[31mred\27[0m \27]0;t\7x\n", 1), { "red x" }, "escapes stripped")
  tap.is(tl("\27[31mred\27[0m \27]0;t\7x\n", 1, { sgr = true }), { "\27[31mred\27[0m x" }, "colours kept with sgr")
  tap.is(tl("\27[0m\n\27]0;t\7\nreal\n\27[2K\n", 5), { "real" }, "a line of escapes only is blank")
  tap.is(tl(string.rep("é", 10) .. "\n", 1, { width = 5 }), { "éé… [cut: 16 more bytes]" }, "cut on a UTF-8 boundary")
  local lines, info = tl(string.rep("q", 3 << 20), 3, { window = 1 << 20, width = 10 })
  tap.is(lines, { "…qqqqqqqqqq… [cut: 1,048,566 more bytes]" }, "no line break in the window: its end, marked")
  tap.is(info.cut, true, "and said so")
  local _, i2 = tl("a\nb\n", 1)
  tap.is({ i2.size, i2.start, i2.cut }, { 4, 2, false }, "size and where the lines start")
  tap.is(tl("", 3), {}, "an empty log")
  local nothing, err = scan.tail_lines("/dev/zero", 3)
  tap.is({ nothing, err }, { nil, "/dev/zero: not a regular file" }, "a device is refused, not read")
end)

os.execute("rm -rf '" .. dir .. "'")
return tap.done()
