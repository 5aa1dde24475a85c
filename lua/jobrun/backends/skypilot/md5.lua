-- MD5 (RFC 1321), for SkyPilot's user hash (common_utils.get_user_hash: the first 8 hex digits
-- of md5("<user>-<last 4 hex digits of md5(hostname)>")). Not for anything secret.
local md5 = {}

local S = { 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22,
            5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20,
            4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23,
            6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21 }
local K = {}
for i = 1, 64 do K[i] = math.floor(math.abs(math.sin(i)) * 2 ^ 32) & 0xffffffff end

local function rotl(x, n)
  x = x & 0xffffffff
  return ((x << n) | (x >> (32 - n))) & 0xffffffff
end

-- hex(text) -> the digest as 32 lower-case hex digits.
function md5.hex(text)
  local len = #text
  text = text .. "\128" .. string.rep("\0", (55 - len) % 64) .. string.pack("<I8", (len * 8) & 0xffffffffffffffff)
  local a0, b0, c0, d0 = 0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476
  for chunk = 1, #text, 64 do
    local M = { string.unpack("<" .. string.rep("I4", 16), text, chunk) }
    local A, B, C, D = a0, b0, c0, d0
    for i = 0, 63 do
      local F, g
      if i < 16 then F, g = (B & C) | (~B & D), i
      elseif i < 32 then F, g = (D & B) | (~D & C), (5 * i + 1) % 16
      elseif i < 48 then F, g = B ~ C ~ D, (3 * i + 5) % 16
      else F, g = C ~ (B | ~D), (7 * i) % 16 end
      F = (F + A + K[i + 1] + M[g + 1]) & 0xffffffff
      A, D, C = D, C, B
      B = (B + rotl(F, S[i + 1])) & 0xffffffff
    end
    a0, b0 = (a0 + A) & 0xffffffff, (b0 + B) & 0xffffffff
    c0, d0 = (c0 + C) & 0xffffffff, (d0 + D) & 0xffffffff
  end
  return (string.pack("<I4I4I4I4", a0, b0, c0, d0):gsub(".", function(c) return string.format("%02x", c:byte()) end))
end

return md5
