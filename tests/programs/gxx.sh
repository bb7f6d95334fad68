# tests/programs/gxx.sh — g++ compiling a template- and STL-heavy C++ file
# (maps, unordered containers, variadic templates, constexpr evaluation,
# lambdas, std::function, smart pointers, <regex>), once under the system
# allocator and once under tide.  cc1plus is the allocation-heavy process
# (the compiler's GC heap and obstacks sit on malloc); the probe must find
# tide in it.  Both compiles must succeed, the object files must be
# identical, and the two programs, run normally, must print the same.
. "$(dirname "${BASH_SOURCE[0]}")/common.bash"
name=g++

need "$name" g++ || exit 0
pt_setup "$name" || exit 0

cat >"$PT_TMP/prog.cc" <<'EOF'
#include <algorithm>
#include <array>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <numeric>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <tuple>
#include <unordered_map>
#include <variant>
#include <vector>

template <typename... Ts> struct overload : Ts... { using Ts::operator()...; };
template <typename... Ts> overload(Ts...) -> overload<Ts...>;

template <std::size_t N> struct Fib { static constexpr unsigned long long value = Fib<N - 1>::value + Fib<N - 2>::value; };
template <> struct Fib<0> { static constexpr unsigned long long value = 0; };
template <> struct Fib<1> { static constexpr unsigned long long value = 1; };

template <std::size_t... I>
constexpr auto fib_table(std::index_sequence<I...>) { return std::array<unsigned long long, sizeof...(I)>{Fib<I>::value...}; }

constexpr unsigned long long sieve_count(int n) {
    std::array<bool, 5000> composite{};
    unsigned long long count = 0;
    for (int i = 2; i < n; i++) {
        if (composite[i]) continue;
        count++;
        for (int j = i * 2; j < n; j += i) composite[j] = true;
    }
    return count;
}

template <typename K, typename V, template <typename...> class Map>
V sum_values(const Map<K, V> &m) {
    V s{};
    for (const auto &kv : m) s += kv.second;
    return s;
}

struct Shape { virtual ~Shape() = default; virtual double area() const = 0; virtual std::string name() const = 0; };
struct Rect : Shape { double w, h; Rect(double a, double b) : w(a), h(b) {} double area() const override { return w * h; } std::string name() const override { return "rect"; } };
struct Circle : Shape { double r; explicit Circle(double a) : r(a) {} double area() const override { return 3 * r * r; } std::string name() const override { return "circle"; } };

template <typename T> class Matrix {
    std::size_t n_;
    std::vector<T> a_;
public:
    explicit Matrix(std::size_t n) : n_(n), a_(n * n) {}
    T &operator()(std::size_t i, std::size_t j) { return a_[i * n_ + j]; }
    const T &operator()(std::size_t i, std::size_t j) const { return a_[i * n_ + j]; }
    Matrix operator*(const Matrix &o) const {
        Matrix r(n_);
        for (std::size_t i = 0; i < n_; i++)
            for (std::size_t k = 0; k < n_; k++)
                for (std::size_t j = 0; j < n_; j++) r(i, j) += (*this)(i, k) * o(k, j);
        return r;
    }
    T trace() const { T t{}; for (std::size_t i = 0; i < n_; i++) t += (*this)(i, i); return t; }
};

int main() {
    constexpr auto fibs = fib_table(std::make_index_sequence<60>{});
    static_assert(fibs[59] == 956722026041ULL, "fib");
    constexpr auto primes = sieve_count(5000);
    std::cout << "fib59 " << fibs[59] << " primes<5000 " << primes << "\n";

    std::map<std::string, int> m;
    std::unordered_map<int, std::vector<std::string>> um;
    unsigned x = 1;
    for (int i = 0; i < 20000; i++) {
        x = x * 1103515245u + 12345u;
        std::string k = "k" + std::to_string((x >> 8) % 5000);
        m[k] += i % 17;
        um[(x >> 4) % 300].push_back(k);
    }
    std::size_t ulen = 0;
    for (const auto &kv : um) ulen += kv.second.size();
    std::cout << "map " << m.size() << " " << sum_values(m) << " " << m.begin()->first << " unordered " << ulen << "\n";

    std::vector<std::unique_ptr<Shape>> shapes;
    for (int i = 0; i < 1000; i++) {
        if (i % 3) shapes.push_back(std::make_unique<Rect>(i % 7, i % 11));
        else shapes.push_back(std::make_unique<Circle>(i % 5));
    }
    std::sort(shapes.begin(), shapes.end(), [](const auto &a, const auto &b) {
        return std::make_tuple(a->area(), a->name()) < std::make_tuple(b->area(), b->name()); });
    double total = std::accumulate(shapes.begin(), shapes.end(), 0.0, [](double s, const auto &p) { return s + p->area(); });
    std::cout << "shapes " << total << " " << shapes.front()->name() << " " << shapes.back()->area() << "\n";

    std::vector<std::variant<int, double, std::string>> vs{1, 2.5, std::string("three"), 4, std::string("five")};
    std::ostringstream os;
    for (auto &v : vs)
        std::visit(overload{[&](int i) { os << "i" << i; }, [&](double d) { os << "d" << d; },
                            [&](const std::string &s) { os << "s" << s; }}, v);
    std::cout << "variant " << os.str() << "\n";

    std::vector<std::function<long(long)>> fs;
    for (int i = 0; i < 100; i++) fs.push_back([i](long v) { return v * 3 + i; });
    long acc = 0;
    for (auto &f : fs) acc = f(acc) % 1000000007;
    std::cout << "functions " << acc << "\n";

    std::string text;
    for (int i = 0; i < 2000; i++) text += "id" + std::to_string(i * 37 % 1000) + "=v" + std::to_string(i) + "; ";
    std::regex re("id(\\d+)=v(\\d+)");
    long rs = 0, rn = 0;
    for (auto it = std::sregex_iterator(text.begin(), text.end(), re); it != std::sregex_iterator(); ++it) {
        rs += std::stol((*it)[1]) + std::stol((*it)[2]);
        rn++;
    }
    std::cout << "regex " << rn << " " << rs << "\n";

    Matrix<long> a(40), b(40);
    for (std::size_t i = 0; i < 40; i++)
        for (std::size_t j = 0; j < 40; j++) { a(i, j) = (long)(i + j) % 7; b(i, j) = (long)(i * j) % 5; }
    std::cout << "matrix " << (a * b * a).trace() << "\n";

    std::set<std::shared_ptr<int>, std::owner_less<std::shared_ptr<int>>> sp;
    std::vector<std::shared_ptr<int>> keep;
    for (int i = 0; i < 500; i++) { keep.push_back(std::make_shared<int>(i)); sp.insert(keep.back()); }
    std::cout << "shared " << sp.size() << " " << keep[499].use_count() << "\n";
    return 0;
}
EOF

# compile sys|tide: compile and link in separate steps (the .o files are compared).
compile() {
    local w=$1
    mkdir -p "$PT_TMP/$w"
    cp "$PT_TMP/prog.cc" "$PT_TMP/$w/prog.cc"
    (cd "$PT_TMP/$w" &&
     "run_$w" "$PT_TMP/$w.log" g++ -std=c++17 -O2 -g0 -c prog.cc -o prog.o &&
     "run_$w" "$PT_TMP/$w.log" g++ -o prog prog.o) >"$PT_TMP/$w.cout" 2>"$PT_TMP/$w.cerr"
}
compile sys
ran_ok "$name" "g++ under the system allocator" $? "$PT_TMP/sys.cerr" || exit 0
compile tide
ran_ok "$name" "g++ under tide" $? "$PT_TMP/tide.cerr" || exit 0
check_on_tide "$name" "$PT_TMP/sys.log" "$PT_TMP/tide.log" 'g\+\+(-[0-9]+)?' '/cc1plus' '[/-]as' '/collect2' '[/-]ld(\.bfd|\.gold)?' || exit 0
same_output "$name" "the object file" "$PT_TMP/sys/prog.o" "$PT_TMP/tide/prog.o" || exit 0
timeout -k 5 60 "$PT_TMP/sys/prog" >"$PT_TMP/sys.out" 2>"$PT_TMP/sys.perr"
ran_ok "$name" "the program compiled under the system allocator" $? "$PT_TMP/sys.perr" || exit 0
timeout -k 5 60 "$PT_TMP/tide/prog" >"$PT_TMP/tide.out" 2>"$PT_TMP/tide.perr"
ran_ok "$name" "the program compiled under tide" $? "$PT_TMP/tide.perr" || exit 0
same_output "$name" "the compiled program's output" "$PT_TMP/sys.out" "$PT_TMP/tide.out" || exit 0
if ! grep -q '^shared 500 2$' "$PT_TMP/tide.out"; then
    fail "$name" "the compiled program did not finish: $(tail -n 2 "$PT_TMP/tide.out" | tr '\n' '|')"
    exit 0
fi
pass "$name"
