-- wrk script: every request is a new Close webhook (its own event id), signed as Close signs
-- them: hex HMAC-SHA256, keyed with the hex-decoded key, over the timestamp then the body.
-- wrk's LuaJIT has no crypto, so SHA-256 is written out here (FIPS 180-4), on `bit`.
-- The key comes from the environment (BENCH_KEY_HEX); `done` prints one parseable line.

local bit = require("bit")
local band, bor, bxor, bnot = bit.band, bit.bor, bit.bxor, bit.bnot
local rshift, lshift, ror, tobit = bit.rshift, bit.lshift, bit.ror, bit.tobit

local K = {
  0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
  0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
  0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
  0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
  0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
  0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
  0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
  0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
}

local function pad(message)
  local length = #message
  local zeros = (64 - (length + 9) % 64) % 64
  local bits = length * 8
  return message .. "\128" .. string.rep("\0", zeros) .. "\0\0\0\0"
    .. string.char(band(rshift(bits, 24), 255), band(rshift(bits, 16), 255),
                   band(rshift(bits, 8), 255), band(bits, 255))
end

local function block(message, start, h)
  local w = {}
  for j = 0, 15 do
    local a, b, c, d = message:byte(start + j * 4, start + j * 4 + 3)
    w[j] = bor(lshift(a, 24), lshift(b, 16), lshift(c, 8), d)
  end
  for j = 16, 63 do
    local x, y = w[j - 15], w[j - 2]
    local s0 = bxor(ror(x, 7), ror(x, 18), rshift(x, 3))
    local s1 = bxor(ror(y, 17), ror(y, 19), rshift(y, 10))
    w[j] = tobit(w[j - 16] + s0 + w[j - 7] + s1)
  end
  local a, b, c, d, e, f, g, hh = h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8]
  for j = 0, 63 do
    local s1 = bxor(ror(e, 6), ror(e, 11), ror(e, 25))
    local ch = bxor(band(e, f), band(bnot(e), g))
    local t1 = hh + s1 + ch + K[j + 1] + w[j]
    local s0 = bxor(ror(a, 2), ror(a, 13), ror(a, 22))
    local maj = bxor(band(a, b), band(a, c), band(b, c))
    hh, g, f, e, d, c, b, a = g, f, e, tobit(d + t1), c, b, a, tobit(t1 + s0 + maj)
  end
  h[1], h[2], h[3], h[4] = tobit(h[1] + a), tobit(h[2] + b), tobit(h[3] + c), tobit(h[4] + d)
  h[5], h[6], h[7], h[8] = tobit(h[5] + e), tobit(h[6] + f), tobit(h[7] + g), tobit(h[8] + hh)
end

local function sha256(message)
  local h = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
             0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19}
  for i = 1, 8 do h[i] = tobit(h[i]) end
  local padded = pad(message)
  for start = 1, #padded, 64 do block(padded, start, h) end
  return h
end

local function raw(h)
  local out = {}
  for i = 1, 8 do
    local v = h[i]
    out[i] = string.char(band(rshift(v, 24), 255), band(rshift(v, 16), 255),
                         band(rshift(v, 8), 255), band(v, 255))
  end
  return table.concat(out)
end

local function hex(h)
  local out = {}
  for i = 1, 8 do out[i] = bit.tohex(h[i]) end
  return table.concat(out)
end

local function xor_key(key, byte)
  local out = {}
  for i = 1, 64 do out[i] = string.char(bxor(key:byte(i) or 0, byte)) end
  return table.concat(out)
end

local key = (os.getenv("BENCH_KEY_HEX") or ""):gsub("..", function(p) return string.char(tonumber(p, 16)) end)
local inner_pad, outer_pad = xor_key(key, 0x36), xor_key(key, 0x5c)

local function hmac_hex(message)
  return hex(sha256(outer_pad .. raw(sha256(inner_pad .. message))))
end

local threads = {}
function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

local counter = 0
local filler = string.rep("x", 600)  -- brings the body to about 1 KB, as Close's are
local template = '{"subscription_id":"whsub_bench","event":{"id":"ev_w%d_%d",'
  .. '"object_type":"opportunity","action":"updated","object_id":"oppo_w%d_%d",'
  .. '"date_created":"%s","date_updated":"%s","lead_id":"lead_bench","user_id":"user_human",'
  .. '"api_key_id":null,"changed_fields":["confidence"],"previous_data":{"confidence":50},'
  .. '"data":{"id":"oppo_w%d_%d","confidence":60,"status_type":"active","value":1000,'
  .. '"note":"%s"}}}'

function request()
  counter = counter + 1
  local now = os.time()
  local stamp = os.date("!%Y-%m-%dT%H:%M:%S.000000", now)
  local body = string.format(template, id, counter, id, counter, stamp, stamp, id, counter, filler)
  local ts = tostring(now)
  local headers = {
    ["Content-Type"] = "application/json",
    ["close-sig-timestamp"] = ts,
    ["close-sig-hash"] = hmac_hex(ts .. body),
  }
  return wrk.format("POST", nil, headers, body)
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WRK_RESULT requests=%d duration_us=%d status_errors=%d socket_errors=%d p50_us=%d p99_us=%d\n",
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
