# tests/programs/lua.sh — Lua 5.4 on a table- and string-heavy script:
# arrays and hash tables grown and emptied, string building, gsub and
# patterns, table.concat and table.sort, closures, coroutines, and full
# garbage collections.  Lua allocates through realloc/free (its l_alloc).
# Its string hashes are seeded per run, so the script prints nothing that
# depends on the order of pairs(); the output must be the same under the
# system allocator and under tide.
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=lua5.4

need "$name" lua5.4 || exit 0
pt_setup "$name" || exit 0

cat >"$PT_TMP/work.lua" <<'EOF'
local seed = 12345
local function rand(n)            -- deterministic, independent of math.random
  seed = (seed * 1103515245 + 12345) % 2147483648
  return (seed // 65536) % n
end
local function sum_sorted_keys(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return #ks, ks[1], ks[#ks]
end
local check = 0
local function out(...)
  local s = table.concat({...}, " ")
  for i = 1, #s do check = (check * 31 + s:byte(i)) % 4294967291 end
  print(s)
end

-- Words and a hash table of them.
local letters = "abcdefghijklmnopqrstuvwxyz"
local words = {}
for i = 1, 80000 do
  local n = 1 + rand(10)
  local w = {}
  for j = 1, n do local k = 1 + rand(26); w[j] = letters:sub(k, k) end
  words[i] = table.concat(w)
end
local count = {}
for _, w in ipairs(words) do count[w] = (count[w] or 0) + 1 end
out("distinct", sum_sorted_keys(count))
for i = 1, #words, 2 do count[words[i]] = nil end
out("after removal", sum_sorted_keys(count))

-- Strings: concatenation, gsub, patterns, formatting, rep.
local text = table.concat(words, " ")
out("text", #text)
local n_vowel_runs = 0
for _ in text:gmatch("[aeiou][aeiou]+") do n_vowel_runs = n_vowel_runs + 1 end
out("vowel runs", n_vowel_runs)
local replaced, nrep = text:sub(1, 300000):gsub("(%a+)", function(w) if #w > 6 then return w:upper() end end)
out("gsub", #replaced, nrep)
local parts = {}
for i = 1, 30000 do parts[#parts + 1] = string.format("%05d:%s;", i, words[i]:rep(1 + i % 3)) end
local joined = table.concat(parts)
out("joined", #joined, joined:sub(1, 40))
local acc = ""
for i = 1, 3000 do acc = acc .. words[i] end     -- quadratic on purpose: many reallocs
out("acc", #acc)

-- Arrays: sort with a comparator, insert/remove in the middle.
local arr = {}
for i = 1, 60000 do arr[i] = { key = words[i], val = rand(1000000) } end
table.sort(arr, function(a, b) if a.val ~= b.val then return a.val < b.val end return a.key < b.key end)
out("sorted", arr[1].val, arr[1].key, arr[#arr].val, arr[#arr].key)
local lst = {}
for i = 1, 3000 do table.insert(lst, 1 + rand(#lst + 1), i) end
for i = 1, 1500 do table.remove(lst, 1 + rand(#lst)) end
local s = 0
for i, v in ipairs(lst) do s = (s + i * v) % 1000000007 end
out("insert/remove", #lst, s)

-- Nested tables, closures, coroutines; garbage made and collected.
local total = 0
for round = 1, 15 do
  local tree = {}
  for i = 1, 20000 do
    tree[i] = { id = i, children = {}, f = function(x) return x + i + round end }
    if i > 1 then local p = tree[1 + rand(i - 1)]; p.children[#p.children + 1] = tree[i] end
  end
  local function walk(t) local n = t.f(0) for _, c in ipairs(t.children) do n = n + walk(c) end return n end
  total = (total + walk(tree[1])) % 1000000007
  tree = nil
  collectgarbage("collect")
end
out("trees", total)
local co = coroutine.wrap(function()
  for i = 1, 50000 do coroutine.yield(string.rep("z", i % 100) .. i) end
end)
local clen = 0
for _ = 1, 50000 do clen = clen + #co() end
out("coroutine", clen)

-- Big strings and tables freed at once.
local big = {}
for i = 1, 100 do big[i] = string.rep(words[i], 2000 + rand(20000)) end
local bl = 0
for _, b in ipairs(big) do bl = bl + #b end
big = nil
collectgarbage("collect")
out("big", bl)
print("check", check)
EOF

run_lua() {  # run_lua sys|tide
    "run_$1" "$PT_TMP/$1.log" lua5.4 "$PT_TMP/work.lua" >"$PT_TMP/$1.out" 2>"$PT_TMP/$1.err"
}
pt_compare "$name" lua5.4 "the script's output" 'lua5\.4' run_lua || exit 0
pt_finished "$name" '^check' || exit 0
pass "$name"
