-- The layout of a verification in Redis, shared by admit.lua and attempt.lua (each script is this
-- file followed by its own). A verification is ONE string: a string costs a third of the commands
-- a hash does (one SET NX writes a new verification whole, one GET reads it, one SET rewrites it),
-- and taking it apart here costs far less than a command.
--
--   \0v1,<n>,<m>,<binding>{<hash><data>}
--
-- n and m: the attempts so far in the open and the bound lane. Every text is length-prefixed
-- (`<length>:<bytes>`), so a binding, hash or data may hold any byte. The codes come oldest first,
-- each its HMAC and its data ('' when it has none, else '+' and the data, as the caller passes it).
-- The leading NUL tells a verification from anything else stored at the key (a value of an older
-- layout, or one written with `set`), which the scripts treat as no verification.
local MAGIC = '\0v1,'

local function field(text)
  return #text .. ':' .. text
end

-- The verification in `raw` as {n, m, b, codes = {{hash, data}, ...}}, or nil when `raw` is not one
-- (absent: false; another type: an error table; another layout: a string without the magic).
local function decode(raw)
  if type(raw) ~= 'string' or string.sub(raw, 1, #MAGIC) ~= MAGIC then return nil end
  local n, m, pos = string.match(raw, '^(%d+),(%d+),()', #MAGIC + 1)
  if not pos then return nil end
  local function nextField()
    local length, from = string.match(raw, '^(%d+):()', pos)
    if not length then return nil end
    pos = from + tonumber(length)
    return string.sub(raw, from, pos - 1)
  end
  local v = { n = tonumber(n), m = tonumber(m), b = nextField(), codes = {} }
  if not v.b then return nil end
  while pos <= #raw do
    local hash, data = nextField(), nextField()
    if not hash or not data then return nil end
    v.codes[#v.codes + 1] = { hash, data }
  end
  return v
end

local function encode(v)
  local parts = { MAGIC, v.n, ',', v.m, ',', field(v.b) }
  for _, code in ipairs(v.codes) do
    parts[#parts + 1] = field(code[1]) .. field(code[2])
  end
  return table.concat(parts)
end

