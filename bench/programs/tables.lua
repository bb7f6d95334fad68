-- tables.lua — a table- and string-heavy Lua workload for bench/run.sh.
--
-- Lua allocates everything through one realloc-style function that calls
-- the C library's realloc and free, so this exercises the allocator under
-- test directly.  Stresses: tables that grow (array and hash parts are
-- reallocated as they double), many short strings (interned, so each new
-- one is a malloc), string building with concatenation and table.concat,
-- and the garbage collector freeing all of it.  The printed checksum is the
-- same under every allocator.
--
-- Usage: lua5.4 tables.lua SCALE           (SCALE 1 is about a second)
local scale = tonumber(arg[1]) or 1

-- a deterministic generator (LCG), so every run does the same work
local x = 12345
local function rand(n)
  x = (x * 1103515245 + 12345) % 2147483648
  return x % n
end

-- 1. word counts: many small strings and a growing hash table
local counts = {}
for i = 1, math.floor(300000 * scale) do
  local w = string.format("w%d_%d", rand(5000), rand(7))
  counts[w] = (counts[w] or 0) + 1
end
local n_words = 0
for _ in pairs(counts) do n_words = n_words + 1 end

-- 2. records: tables of tables, sorted, then serialised
local recs = {}
for i = 1, math.floor(60000 * scale) do
  recs[#recs + 1] = { id = i, name = "item" .. rand(100000), tags = { rand(10), rand(10), rand(10) } }
end
table.sort(recs, function(a, b)
  if a.name ~= b.name then return a.name < b.name end
  return a.id < b.id
end)
local parts = {}
for i, r in ipairs(recs) do
  parts[#parts + 1] = r.name .. ":" .. r.id .. "[" .. table.concat(r.tags, ",") .. "]"
end
local blob = table.concat(parts, ";")

-- 3. churn: build and drop trees of small tables
local function tree(depth)
  if depth == 0 then return { v = rand(100) } end
  return { l = tree(depth - 1), r = tree(depth - 1), s = tostring(depth) }
end
local function sum(t)
  if t.v then return t.v end
  return sum(t.l) + sum(t.r) + #t.s
end
local total = 0
for i = 1, math.floor(400 * scale) do
  total = total + sum(tree(10))
end

-- 4. string rewriting: gsub and upper produce fresh strings each time
local s = string.rep("alpha beta gamma delta ", 200)
local n_sub = 0
for i = 1, math.floor(300 * scale) do
  local t, k = s:gsub("(%a+)", function(w) return w:upper() .. i end)
  n_sub = n_sub + k + #t
end

print("checksum", n_words, #blob, total, n_sub)
