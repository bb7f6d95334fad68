// templates.cpp — a C++ file for bench/run.sh to compile with g++ -O2.
//
// The compiler (cc1plus) is the real program under test: parsing the
// standard headers, instantiating templates and optimising make it allocate
// many tree nodes, hash tables and vectors through malloc.  The amount of
// work is set with -DSCALE=N: N distinct record types are each put through
// maps, unordered maps, vectors, sorting, regexes, variants and lambdas, so
// each adds a full set of template instantiations; -DUSE_REGEX=0 leaves out
// <regex>, which alone costs several seconds of compiling.  Output is built in
// std::string rather than iostreams, so that the QUICK build (-DSCALE=1
// -DUSE_REGEX=0) spends its time on this file's templates, not on parsing
// <iostream>.  The file is never run; only compiling it is timed (it does
// build and run: g++ -std=c++17 templates.cpp && ./a.out).
#ifndef USE_REGEX
#define USE_REGEX 1 // <regex> alone doubles the compile time; QUICK runs leave it out
#endif

#include <algorithm>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <numeric>
#include <optional>
#if USE_REGEX
#include <regex>
#endif
#include <set>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

#ifndef SCALE
#define SCALE 8
#endif

template <int N>
struct Record {
    int id;
    std::string name;
    std::vector<double> values;
    std::map<std::string, int> attrs;
    bool operator<(const Record &o) const { return std::tie(id, name) < std::tie(o.id, o.name); }
};

template <int N>
struct Store {
    std::vector<Record<N>> items;
    std::unordered_map<std::string, std::size_t> by_name;
    std::set<int> ids;

    void add(int id, const std::string &name) {
        Record<N> r{id, name + std::to_string(N), {}, {}};
        for (int k = 0; k < N % 7 + 3; k++) {
            r.values.push_back(id * 0.5 + k);
            r.attrs[name + "#" + std::to_string(k)] = k * N;
        }
        by_name.emplace(r.name, items.size());
        ids.insert(id);
        items.push_back(std::move(r));
    }

    std::optional<double> mean(const std::string &name) const {
        auto it = by_name.find(name);
        if (it == by_name.end()) return std::nullopt;
        const auto &v = items[it->second].values;
        if (v.empty()) return std::nullopt;
        return std::accumulate(v.begin(), v.end(), 0.0) / v.size();
    }

    std::string report(const std::string &pattern) const {
#if USE_REGEX
        std::regex re(pattern + std::to_string(N) + "[0-9]*");
#endif
        std::string out;
        std::vector<Record<N>> sorted(items);
        std::sort(sorted.begin(), sorted.end());
        for (const auto &r : sorted)
#if USE_REGEX
            if (std::regex_search(r.name, re)) {
#else
            if (r.name.find(pattern) != std::string::npos) {
#endif
                out += std::to_string(r.id) + ':' + r.name + '=';
                for (const auto &[k, v] : r.attrs) out += k + '/' + std::to_string(v) + ' ';
                out += '\n';
            }
        return out;
    }

    template <typename F>
    auto transform(F f) const {
        std::vector<decltype(f(std::declval<const Record<N> &>()))> out;
        std::transform(items.begin(), items.end(), std::back_inserter(out), f);
        return out;
    }
};

using Value = std::variant<int, double, std::string, std::vector<int>>;

template <int N>
std::string exercise() {
    Store<N> s;
    for (int i = 0; i < 100; i++) s.add(i * N, "rec" + std::to_string(i % 13));
    auto names = s.transform([](const Record<N> &r) { return r.name + "!"; });
    auto sizes = s.transform([](const Record<N> &r) { return r.values.size() * N; });
    std::map<int, Value> values;
    for (std::size_t i = 0; i < sizes.size(); i++) {
        switch (i % 4) {
        case 0: values[i] = static_cast<int>(sizes[i]); break;
        case 1: values[i] = 0.5 * sizes[i]; break;
        case 2: values[i] = names[i]; break;
        default: values[i] = std::vector<int>(sizes[i] % 5, N); break;
        }
    }
    std::size_t total = 0;
    for (const auto &[k, v] : values)
        total += std::visit([](const auto &x) -> std::size_t {
            using T = std::decay_t<decltype(x)>;
            if constexpr (std::is_same_v<T, std::string>) return x.size();
            else if constexpr (std::is_same_v<T, std::vector<int>>) return x.size();
            else return static_cast<std::size_t>(x);
        }, v);
    std::function<std::string(int)> f = [&](int k) { return s.report("rec" + std::to_string(k)); };
    return f(N % 13) + std::to_string(total) + std::to_string(s.mean("rec1").value_or(0.0));
}

template <int... Ns>
std::string run_all(std::integer_sequence<int, Ns...>) {
    std::string out;
    ((out += exercise<Ns>()), ...);
    return out;
}

int main() {
    std::printf("%zu\n", run_all(std::make_integer_sequence<int, SCALE>{}).size());
    return 0;
}
