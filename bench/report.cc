// SPDX-License-Identifier: MIT
// report.cc: turns the JSON files bench/run.sh collected into
// docs/BENCHMARKS.md, the data files the gnuplot scripts draw, and one
// merged JSON file of every raw result.
//
//   bench-report --results DIR --out FILE.md --data DIR --mode MODE
//                --command "CMD" [--versions FILE] [--failures FILE]
//
// Every result file is one process's --benchmark_format=json output; its
// context names the allocator (alloc.c). A figure is the median over the
// rounds of one (benchmark, allocator) pair. Ratios are mova / peer, from
// the same run, lower is better. No dependency beyond the C++ library.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

// ------------------------------------------------------------ a small JSON reader

struct Json {
	enum Type { Null, Bool, Num, Str, Arr, Obj } type = Null;
	bool b = false;
	double num = 0;
	std::string str;
	std::vector<Json> arr;
	std::vector<std::pair<std::string, Json>> obj; // in file order

	const Json *get(const std::string &k) const
	{
		for (auto &kv : obj)
			if (kv.first == k)
				return &kv.second;
		return nullptr;
	}
	std::string get_str(const std::string &k, const std::string &def = "") const
	{
		const Json *v = get(k);
		return v && v->type == Str ? v->str : def;
	}
	double get_num(const std::string &k, double def = NAN) const
	{
		const Json *v = get(k);
		return v && v->type == Num ? v->num : def;
	}
};

struct Parser {
	const std::string &s;
	size_t i = 0;
	std::string err;
	explicit Parser(const std::string &text) : s(text) {}

	void ws()
	{
		while (i < s.size() && isspace((unsigned char)s[i]))
			i++;
	}
	bool fail(const char *what)
	{
		if (err.empty())
			err = std::string(what) + " at offset " + std::to_string(i);
		return false;
	}
	bool lit(const char *w)
	{
		size_t n = strlen(w);
		if (s.compare(i, n, w) != 0)
			return fail("bad literal");
		i += n;
		return true;
	}
	bool string(std::string &out)
	{
		if (s[i] != '"')
			return fail("expected string");
		i++;
		while (i < s.size() && s[i] != '"') {
			char c = s[i++];
			if (c != '\\') {
				out += c;
				continue;
			}
			if (i >= s.size())
				return fail("bad escape");
			char e = s[i++];
			switch (e) {
			case 'n': out += '\n'; break;
			case 't': out += '\t'; break;
			case 'r': out += '\r'; break;
			case 'b': out += '\b'; break;
			case 'f': out += '\f'; break;
			case 'u': {
				unsigned cp =
				    (unsigned)strtoul(s.substr(i, 4).c_str(), nullptr, 16);
				i += 4;
				if (cp < 0x80) {
					out += (char)cp;
				} else if (cp < 0x800) {
					out += (char)(0xc0 | (cp >> 6));
					out += (char)(0x80 | (cp & 0x3f));
				} else {
					out += (char)(0xe0 | (cp >> 12));
					out += (char)(0x80 | ((cp >> 6) & 0x3f));
					out += (char)(0x80 | (cp & 0x3f));
				}
				break;
			}
			default: out += e;
			}
		}
		if (i >= s.size())
			return fail("unterminated string");
		i++;
		return true;
	}
	bool value(Json &v)
	{
		ws();
		if (i >= s.size())
			return fail("unexpected end");
		char c = s[i];
		if (c == '{') {
			v.type = Json::Obj;
			i++;
			ws();
			if (s[i] == '}') {
				i++;
				return true;
			}
			for (;;) {
				ws();
				std::string k;
				if (!string(k))
					return false;
				ws();
				if (s[i] != ':')
					return fail("expected ':'");
				i++;
				Json x;
				if (!value(x))
					return false;
				v.obj.emplace_back(std::move(k), std::move(x));
				ws();
				if (s[i] == ',') {
					i++;
					continue;
				}
				if (s[i] == '}') {
					i++;
					return true;
				}
				return fail("expected ',' or '}'");
			}
		}
		if (c == '[') {
			v.type = Json::Arr;
			i++;
			ws();
			if (s[i] == ']') {
				i++;
				return true;
			}
			for (;;) {
				Json x;
				if (!value(x))
					return false;
				v.arr.push_back(std::move(x));
				ws();
				if (s[i] == ',') {
					i++;
					continue;
				}
				if (s[i] == ']') {
					i++;
					return true;
				}
				return fail("expected ',' or ']'");
			}
		}
		if (c == '"') {
			v.type = Json::Str;
			return string(v.str);
		}
		if (c == 't') {
			v.type = Json::Bool;
			v.b = true;
			return lit("true");
		}
		if (c == 'f') {
			v.type = Json::Bool;
			return lit("false");
		}
		if (c == 'n')
			return lit("null");
		// numbers, and the library's "nan"/"inf" spellings
		char *end = nullptr;
		v.type = Json::Num;
		v.num = strtod(s.c_str() + i, &end);
		if (end == s.c_str() + i)
			return fail("bad value");
		i = (size_t)(end - s.c_str());
		return true;
	}
};

static void write_json(std::ostream &o, const Json &v, int indent)
{
	std::string pad(indent, ' ');
	switch (v.type) {
	case Json::Null: o << "null"; break;
	case Json::Bool: o << (v.b ? "true" : "false"); break;
	case Json::Num: {
		if (!std::isfinite(v.num)) {
			o << "null";
			break;
		}
		char buf[64];
		snprintf(buf, sizeof buf, "%.10g", v.num);
		o << buf;
		break;
	}
	case Json::Str: {
		o << '"';
		for (char c : v.str) {
			if (c == '"' || c == '\\')
				o << '\\' << c;
			else if (c == '\n')
				o << "\\n";
			else if ((unsigned char)c < 0x20) {
				char buf[8];
				snprintf(buf, sizeof buf, "\\u%04x", c);
				o << buf;
			} else
				o << c;
		}
		o << '"';
		break;
	}
	case Json::Arr:
		o << "[";
		for (size_t k = 0; k < v.arr.size(); k++) {
			o << (k ? ", " : "");
			write_json(o, v.arr[k], indent + 2);
		}
		o << "]";
		break;
	case Json::Obj:
		o << "{\n";
		for (size_t k = 0; k < v.obj.size(); k++) {
			o << pad << "  ";
			Json key;
			key.type = Json::Str;
			key.str = v.obj[k].first;
			write_json(o, key, 0);
			o << ": ";
			write_json(o, v.obj[k].second, indent + 2);
			o << (k + 1 < v.obj.size() ? ",\n" : "\n");
		}
		o << pad << "}";
		break;
	}
}

// ------------------------------------------------------------ results

// The figures of one run of one benchmark.
struct Run {
	std::map<std::string, double> m; // real_time_ns, cpu_time_ns, items_per_second, counters
	std::string label, error;
};

// key (benchmark, normalised) -> column (allocator, or allocator + variant) -> runs
static std::map<std::string, std::map<std::string, std::vector<Run>>> results;
static std::vector<Json> files;
static Json first_context;
static std::set<std::string> allocators_seen;

static std::string normalise(std::string name)
{
	for (const char *drop : {"/iterations:1", "/manual_time", "/real_time"}) {
		size_t p;
		while ((p = name.find(drop)) != std::string::npos)
			name.erase(p, strlen(drop));
	}
	return name;
}

static double to_ns(double t, const std::string &unit)
{
	if (unit == "us")
		return t * 1e3;
	if (unit == "ms")
		return t * 1e6;
	if (unit == "s")
		return t * 1e9;
	return t;
}

static void load(const fs::path &p)
{
	std::ifstream in(p);
	std::stringstream ss;
	ss << in.rdbuf();
	std::string text = ss.str();
	Json root;
	Parser ps(text);
	bool ok = ps.value(root);
	if (!ok) {
		// a process that crashed leaves its file cut short: keep the runs it finished
		size_t cut = text.rfind("\n    }");
		if (cut != std::string::npos) {
			std::string fixed = text.substr(0, cut + 6) + "\n  ]\n}\n";
			root = Json();
			Parser again(fixed);
			ok = again.value(root);
			if (ok)
				fprintf(stderr,
					"bench-report: %s: cut short, runs before the cut kept\n",
					p.c_str());
		}
	}
	if (!ok || root.type != Json::Obj) {
		fprintf(stderr, "bench-report: %s: %s (skipped)\n", p.c_str(),
			ps.err.empty() ? "not an object" : ps.err.c_str());
		return;
	}
	const Json *ctx = root.get("context");
	const Json *bms = root.get("benchmarks");
	if (!ctx || !bms)
		return;
	std::string alloc = ctx->get_str("allocator", "?");
	allocators_seen.insert(alloc);
	if (first_context.type == Json::Null)
		first_context = *ctx;
	for (auto &b : bms->arr) {
		if (b.get_str("run_type") == "aggregate")
			continue;
		Run r;
		std::string unit = b.get_str("time_unit", "ns");
		r.m["real_time_ns"] = to_ns(b.get_num("real_time", 0), unit);
		r.m["cpu_time_ns"] = to_ns(b.get_num("cpu_time", 0), unit);
		static const std::set<std::string> skip = {
		    "family_index", "per_family_instance_index",
		    "repetitions",  "repetition_index",
		    "threads",      "iterations",
		    "real_time",    "cpu_time"};
		for (auto &kv : b.obj)
			if (kv.second.type == Json::Num && !skip.count(kv.first))
				r.m[kv.first] = kv.second.num;
		r.label = b.get_str("label");
		if (const Json *e = b.get("error_occurred"); e && e->b)
			r.error = b.get_str("error_message", "error");
		results[normalise(b.get_str("name"))][alloc].push_back(r);
	}
	Json f = root;
	Json name;
	name.type = Json::Str;
	name.str = p.filename().string();
	f.obj.insert(f.obj.begin(), {"file", name});
	files.push_back(std::move(f));
}

static double median(std::vector<double> v)
{
	v.erase(std::remove_if(v.begin(), v.end(), [](double x) { return !std::isfinite(x); }),
		v.end());
	if (v.empty())
		return NAN;
	std::sort(v.begin(), v.end());
	size_t n = v.size();
	return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// The median of metric over the rounds of (key, alloc); NAN when absent or errored.
static double med(const std::string &key, const std::string &alloc, const std::string &metric)
{
	auto it = results.find(key);
	if (it == results.end())
		return NAN;
	auto jt = it->second.find(alloc);
	if (jt == it->second.end())
		return NAN;
	std::vector<double> v;
	for (auto &r : jt->second) {
		if (!r.error.empty())
			continue;
		auto m = r.m.find(metric);
		if (m != r.m.end())
			v.push_back(m->second);
	}
	return median(v);
}

static std::string error_of(const std::string &key, const std::string &alloc)
{
	auto it = results.find(key);
	if (it == results.end())
		return "";
	auto jt = it->second.find(alloc);
	if (jt == it->second.end())
		return "";
	for (auto &r : jt->second)
		if (!r.error.empty())
			return r.error;
	return "";
}

static size_t rounds_of(const std::string &key, const std::string &alloc)
{
	auto it = results.find(key);
	if (it == results.end())
		return 0;
	auto jt = it->second.find(alloc);
	return jt == it->second.end() ? 0 : jt->second.size();
}

// nanoseconds per operation: 1e9 / items_per_second
static double ns_op(const std::string &key, const std::string &alloc)
{
	double ips = med(key, alloc, "items_per_second");
	return ips > 0 ? 1e9 / ips : NAN;
}

static std::string fmt(double v, int prec = 2)
{
	if (!std::isfinite(v))
		return "–";
	char buf[64];
	double a = fabs(v);
	if (prec == 0 || a >= 1000)
		snprintf(buf, sizeof buf, "%.0f", v);
	else if (a >= 100)
		snprintf(buf, sizeof buf, "%.1f", v);
	else
		snprintf(buf, sizeof buf, "%.*f", prec, v);
	return buf;
}

static std::string fmt_ratio(double v)
{
	if (!std::isfinite(v))
		return "–";
	char buf[32];
	snprintf(buf, sizeof buf, "%.2fx", v);
	return buf;
}

// ------------------------------------------------------------ the report

static std::vector<std::string> allocators; // in display order, mova first
static std::vector<std::string> peers;

static std::vector<std::string> keys_with_prefix(const std::string &prefix)
{
	std::vector<std::string> out;
	for (auto &kv : results)
		if (kv.first.compare(0, prefix.size(), prefix) == 0)
			out.push_back(kv.first);
	// natural order: the numbers in the names (sizes, alignments) compared as numbers
	std::stable_sort(out.begin(), out.end(), [](const std::string &a, const std::string &b) {
		size_t i = 0, j = 0;
		while (i < a.size() && j < b.size()) {
			if (isdigit((unsigned char)a[i]) && isdigit((unsigned char)b[j])) {
				char *ea, *eb;
				long x = strtol(a.c_str() + i, &ea, 10),
				     y = strtol(b.c_str() + j, &eb, 10);
				if (x != y)
					return x < y;
				i = (size_t)(ea - a.c_str());
				j = (size_t)(eb - b.c_str());
			} else {
				if (a[i] != b[j])
					return a[i] < b[j];
				i++;
				j++;
			}
		}
		return a.size() - i < b.size() - j;
	});
	return out;
}

struct Report {
	std::ostringstream md;
	std::string data_dir;

	void table_head(const std::vector<std::string> &cols)
	{
		md << "|";
		for (auto &c : cols)
			md << " " << c << " |";
		md << "\n|";
		for (size_t i = 0; i < cols.size(); i++)
			md << (i ? "---:|" : "---|");
		md << "\n";
	}
	void row(const std::vector<std::string> &cells)
	{
		md << "|";
		for (auto &c : cells)
			md << " " << c << " |";
		md << "\n";
	}

	// ns/op for every allocator, then mova / peer for every peer
	void micro_tables(const std::string &title, const std::vector<std::string> &keys)
	{
		if (keys.empty())
			return;
		md << "\n### " << title
		   << "\n\nNanoseconds per operation (median; lower is better).\n\n";
		std::vector<std::string> cols = {"benchmark"};
		for (auto &a : allocators)
			cols.push_back(a);
		table_head(cols);
		for (auto &k : keys) {
			std::vector<std::string> cells = {"`" + k + "`"};
			for (auto &a : allocators) {
				std::string e = error_of(k, a);
				cells.push_back(e.empty() ? fmt(ns_op(k, a)) : "error");
			}
			row(cells);
		}
		if (peers.empty() ||
		    std::find(allocators.begin(), allocators.end(), "mova") == allocators.end())
			return;
		md << "\nRatio mova / peer (time per operation; below 1 mova is faster).\n\n";
		cols = {"benchmark"};
		for (auto &p : peers)
			cols.push_back("mova / " + p);
		table_head(cols);
		for (auto &k : keys) {
			std::vector<std::string> cells = {"`" + k + "`"};
			for (auto &p : peers)
				cells.push_back(fmt_ratio(ns_op(k, "mova") / ns_op(k, p)));
			row(cells);
		}
	}
};

static std::string read_file(const std::string &p)
{
	std::ifstream in(p);
	std::stringstream ss;
	ss << in.rdbuf();
	return ss.str();
}

static std::string trim(std::string s)
{
	while (!s.empty() && isspace((unsigned char)s.back()))
		s.pop_back();
	size_t i = 0;
	while (i < s.size() && isspace((unsigned char)s[i]))
		i++;
	return s.substr(i);
}

static double geomean(const std::vector<double> &v)
{
	double s = 0;
	size_t n = 0;
	for (double x : v)
		if (std::isfinite(x) && x > 0) {
			s += log(x);
			n++;
		}
	return n ? exp(s / (double)n) : NAN;
}

int main(int argc, char **argv)
{
	std::string results_dir, out_md, data_dir, mode = "quick", command, versions, failures;
	for (int i = 1; i + 1 < argc; i += 2) {
		std::string k = argv[i], v = argv[i + 1];
		if (k == "--results")
			results_dir = v;
		else if (k == "--out")
			out_md = v;
		else if (k == "--data")
			data_dir = v;
		else if (k == "--mode")
			mode = v;
		else if (k == "--command")
			command = v;
		else if (k == "--versions")
			versions = v;
		else if (k == "--failures")
			failures = v;
		else {
			fprintf(stderr, "bench-report: unknown option %s\n", k.c_str());
			return 2;
		}
	}
	if (results_dir.empty() || out_md.empty() || data_dir.empty()) {
		fprintf(stderr, "usage: bench-report --results DIR --out FILE.md --data DIR "
				"[--mode M] [--command C] [--versions F] [--failures F]\n");
		return 2;
	}
	std::vector<fs::path> paths;
	for (auto &e : fs::directory_iterator(results_dir))
		if (e.path().extension() == ".json")
			paths.push_back(e.path());
	std::sort(paths.begin(), paths.end());
	for (auto &p : paths)
		load(p);
	if (files.empty()) {
		fprintf(stderr, "bench-report: no results in %s\n", results_dir.c_str());
		return 1;
	}
	for (const char *a : {"mova", "mova-plain", "mova-secure", "mova-preload", "glibc",
			      "jemalloc", "mimalloc", "tcmalloc"})
		if (allocators_seen.count(a))
			allocators.push_back(a);
	for (auto &a : allocators_seen)
		if (std::find(allocators.begin(), allocators.end(), a) == allocators.end())
			allocators.push_back(a);
	for (auto &a : allocators)
		if (a.compare(0, 4, "mova") != 0) // mova-preload is mova, not a peer
			peers.push_back(a);

	fs::create_directories(data_dir);
	Report r;
	r.data_dir = data_dir;
	auto &md = r.md;

	// ---------------------------------------------------------------- header
	md << "# mova benchmarks\n\n"
	   << "Generated by `bench/run.sh` (" << mode << " mode); do not edit by hand. "
	   << "Raw results: [`benchmarks/results.json`](benchmarks/results.json); "
	   << "how the suite works: `bench/alloc.h`, `bench/micro_*.c`, `bench/macro_*.c`.\n\n"
	   << "Every allocator runs in its own processes, from executables built from the same C "
	   << "sources: the peers are linked so that they replace malloc in the whole process; "
	      "mova "
	   << "is measured through `mova_malloc` and friends (and its handles). Figures are "
	      "medians "
	   << "over the rounds, the allocators interleaved round by round; ratios are mova / peer "
	   << "from the same run, **lower is better**. The machine is small and shared: compare "
	   << "ratios, not absolute figures, and only within one report.\n\n";

	md << "## Machine and command\n\n";
	md << "- command: `" << command << "`\n";
	md << "- date: " << first_context.get_str("date") << "\n";
	{
		std::string cpu;
		std::ifstream ci("/proc/cpuinfo");
		std::string line;
		while (std::getline(ci, line))
			if (line.compare(0, 10, "model name") == 0) {
				cpu = trim(line.substr(line.find(':') + 1));
				break;
			}
		md << "- CPU: " << cpu << ", " << fmt(first_context.get_num("num_cpus"), 0)
		   << " CPUs at " << fmt(first_context.get_num("mhz_per_cpu"), 0) << " MHz";
		if (const Json *caches = first_context.get("caches")) {
			md << "; caches:";
			for (auto &c : caches->arr)
				md << " L" << fmt(c.get_num("level"), 0) << " "
				   << c.get_str("type").substr(0, 1) << " "
				   << fmt(c.get_num("size") / 1024, 0) << " KiB";
		}
		md << "\n";
		std::string os = trim(read_file("/proc/sys/kernel/osrelease"));
		md << "- kernel: Linux " << os << "\n";
		if (const Json *la = first_context.get("load_avg"); la && la->arr.size() == 3)
			md << "- load average at the first run: " << fmt(la->arr[0].num) << " "
			   << fmt(la->arr[1].num) << " " << fmt(la->arr[2].num) << "\n";
		md << "- Google Benchmark library build type: "
		   << first_context.get_str("library_build_type") << " (Debian's package)\n";
	}
	if (!versions.empty()) {
		md << "- versions:\n";
		std::istringstream vs(read_file(versions));
		std::string line;
		while (std::getline(vs, line))
			if (!trim(line).empty())
				md << "  - " << trim(line) << "\n";
	}
	md << "- allocators:";
	for (auto &a : allocators)
		md << " " << a;
	md << "\n- give-back calls: ";
	{
		std::map<std::string, std::string> gb;
		for (auto &f : files)
			if (const Json *c = f.get("context"))
				gb[c->get_str("allocator")] = c->get_str("give_back");
		bool first = true;
		for (auto &a : allocators) {
			md << (first ? "" : "; ") << a << " `" << gb[a] << "`";
			first = false;
		}
		md << " (mova's handle workloads call `mova_compact(a, -1)` on their own arena)\n";
	}
	std::string fail_text = failures.empty() ? "" : trim(read_file(failures));
	if (!fail_text.empty()) {
		md << "\n**Runs that failed** (their figures are missing below):\n\n```\n"
		   << fail_text << "\n```\n";
	}

	// ---------------------------------------------------------------- targets
	// computed first, printed first
	struct Target {
		std::string what, goal, measured;
		int met; // 1 met, 0 not met, -1 not measured
	};
	std::vector<Target> targets;
	auto verdict = [](int m) { return m < 0 ? "not measured" : m ? "**met**" : "not met"; };
	{
		// resident / live after churn and compaction
		double v = med("frag/handles/threads:2", "mova", "rss_over_live_give_back");
		double best = NAN;
		std::string best_name;
		for (auto &p : peers) {
			double x = med("frag/malloc/threads:2", p, "rss_over_live_give_back");
			if (std::isfinite(x) && (!std::isfinite(best) || x < best)) {
				best = x;
				best_name = p;
			}
		}
		std::string m = fmt(v) + " (mova handles + `mova_compact`)";
		if (std::isfinite(best))
			m += "; best peer " + best_name + " " + fmt(best);
		double kc =
		    med("frag/handles_kcompactd/threads:2", "mova", "rss_over_live_give_back");
		if (std::isfinite(kc))
			m += "; kcompactd alone " + fmt(kc);
		targets.push_back(
		    {"Resident / live after churn and compaction (fragmentation workload)",
		     "<= 1.15 (goal 1.10)", m, std::isfinite(v) ? v <= 1.15 : -1});
	}
	auto size_ratio = [&](const std::string &a_key, const std::string &a_alloc,
			      const std::string &b_key, const std::string &b_alloc,
			      const std::vector<int> &sizes, double &worst, int &worst_size) {
		std::vector<double> rs;
		worst = NAN;
		worst_size = 0;
		for (int s : sizes) {
			std::string sfx = std::to_string(s);
			double x = ns_op(a_key + sfx, a_alloc) / ns_op(b_key + sfx, b_alloc);
			if (!std::isfinite(x))
				continue;
			rs.push_back(x);
			if (!std::isfinite(worst) || x > worst) {
				worst = x;
				worst_size = s;
			}
		}
		return geomean(rs);
	};
	const std::vector<int> small = {16, 32, 48, 64, 96, 128, 192, 256};
	{
		double worst;
		int ws;
		double g = size_ratio("malloc_free/", "mova", "malloc_free/", "mimalloc", small,
				      worst, ws);
		targets.push_back({"malloc+free, 16-256 B, one thread, vs mimalloc",
				   "<= 1.0x (geometric mean over the sizes)",
				   fmt_ratio(g) + " (worst " + fmt_ratio(worst) + " at " +
				       std::to_string(ws) + " B)",
				   std::isfinite(g) ? g <= 1.0 : -1});
	}
	{
		std::vector<double> rs;
		for (int s : {16, 64, 256}) {
			std::string k = "prodcons/" + std::to_string(s) + "/threads:2";
			rs.push_back(ns_op(k, "mova") / ns_op(k, "jemalloc"));
		}
		double g = geomean(rs);
		double worst = *std::max_element(rs.begin(), rs.end());
		targets.push_back(
		    {"malloc+free across 2 threads (remote frees, prodcons 16/64/256 B), "
		     "vs jemalloc",
		     "<= 1.0x", fmt_ratio(g) + " (worst " + fmt_ratio(worst) + ")",
		     std::isfinite(g) ? g <= 1.0 : -1});
	}
	{
		double worst;
		int ws;
		double g = size_ratio("handle/halloc_hfree/", "mova", "malloc_free/", "mimalloc",
				      {16, 32, 64, 128, 256}, worst, ws);
		std::string m = fmt_ratio(g) + " (worst " + fmt_ratio(worst) + " at " +
				std::to_string(ws) + " B)";
		// hfree's one locked CAS, against mimalloc's whole pair at 64 B
		double cas = ns_op("handle/cas_floor", "mova"),
		       mi = ns_op("malloc_free/64", "mimalloc");
		if (std::isfinite(cas) && std::isfinite(mi))
			m += "; hfree's CAS alone is " + fmt(cas) + " ns, " + fmt_ratio(cas / mi) +
			     " of mimalloc's pair";
		targets.push_back({"halloc+hfree (16-256 B) vs mimalloc's malloc+free", "<= 1.5x",
				   m, std::isfinite(g) ? g <= 1.5 : -1});
	}
	{
		// each of pin and unpin makes one locked CAS on the entry: the floor
		double v = ns_op("handle/pin_unpin", "mova"),
		       cas = ns_op("handle/cas_floor", "mova");
		std::string m = fmt(v) + " ns";
		if (std::isfinite(cas))
			m += " (floor: two CAS, 2 x " + fmt(cas) + " ns)";
		targets.push_back({"pin+unpin", "< 10 ns", m, std::isfinite(v) ? v < 10 : -1});
	}
	{
		double v = ns_op("handle/deref", "mova") / ns_op("handle/plain_load", "mova");
		targets.push_back({"deref inside a read section vs a plain pointer load", "<= 2x",
				   fmt_ratio(v) + " (" + fmt(ns_op("handle/deref", "mova")) +
				       " ns vs " + fmt(ns_op("handle/plain_load", "mova")) + " ns)",
				   std::isfinite(v) ? v <= 2 : -1});
	}
	{
		double worst = NAN;
		int ws = 0;
		for (int s : {4096, 16384, 65536}) {
			std::string sfx = std::to_string(s);
			double x = med("migrate/compact/" + sfx, "mova", "bytes_per_second") /
				   med("migrate/memcpy/" + sfx, "mova", "bytes_per_second");
			if (std::isfinite(x) && (!std::isfinite(worst) || x < worst)) {
				worst = x;
				ws = s;
			}
		}
		targets.push_back(
		    {"Migration bandwidth vs memcpy, objects of 4 KiB and more", ">= 50%",
		     std::isfinite(worst)
			 ? fmt(worst * 100, 1) + "% (lowest, at " + std::to_string(ws) + " B)"
			 : "–",
		     std::isfinite(worst) ? worst >= 0.5 : -1});
	}
	{
		// bench/programs.sh's last table, next to the report: mova's row of
		// each program ("mova  wall  rss  time/jemalloc  rss/jemalloc")
		std::string pm =
		    (std::filesystem::path(out_md).parent_path() / "benchmarks" / "programs.md")
			.string();
		std::istringstream in(read_file(pm));
		std::string line, prog, parts;
		double worst_t = 0, worst_r = 0;
		int n = 0;
		while (std::getline(in, line)) {
			if (line.rfind("### ", 0) == 0)
				prog = line.substr(4);
			std::istringstream ls(line);
			std::string name;
			double wall, rss, t, r;
			if (ls >> name >> wall >> rss >> t >> r && name == "mova") {
				char buf[96];
				snprintf(buf, sizeof buf, "%s%s %.3f / %.3f", n ? "; " : "",
					 prog.c_str(), t, r);
				parts += buf;
				worst_t = std::max(worst_t, t);
				worst_r = std::max(worst_r, r);
				n++;
			}
		}
		std::string where = "[benchmarks/programs.md](benchmarks/programs.md)";
		if (n)
			targets.push_back(
			    {"Real programs under LD_PRELOAD: wall time and peak RSS vs jemalloc",
			     "<= 1.1x, <= 1.0x",
			     "time / RSS: " + parts +
				 " (`bench/programs.sh`, its own run: " + where + ")",
			     worst_t <= 1.1 && worst_r <= 1.0});
		else
			targets.push_back(
			    {"Real programs under LD_PRELOAD: wall time and peak RSS vs jemalloc",
			     "<= 1.1x, <= 1.0x",
			     "measured by `bench/programs.sh` (python3, sqlite3, git, redis under "
			     "each allocator), not by this suite: see " +
				 where,
			     -1});
	}

	md << "\n## Targets (BENCH.md)\n\n";
	r.table_head({"target", "wanted", "measured", "verdict"});
	for (auto &t : targets)
		r.row({t.what, t.goal, t.measured, verdict(t.met)});

	// ---------------------------------------------------------------- micro
	md << "\n## Micro benchmarks\n\nOne operation is a malloc+free pair (or a realloc step, "
	   << "an aligned_alloc+free pair); the loops of cheap operations are batched, so the "
	   << "wrapper's cost per iteration is negligible. Single-threaded figures use CPU time, "
	   << "two-thread figures real time.\n";
	r.micro_tables("malloc + free pairs by size", keys_with_prefix("malloc_free/"));
	// the free-list hardening's cost: mova is built at the default -Dsecure,
	// mova-plain or mova-secure at the other level (bench/meson.build)
	for (const char *other : {"mova-plain", "mova-secure"}) {
		if (!allocators_seen.count(other))
			continue;
		bool plain_is_other = !strcmp(other, "mova-plain");
		const std::string sec = plain_is_other ? "mova" : other,
				  pl = plain_is_other ? other : "mova";
		md << "\n#### Free-list hardening: secure / plain\n\nmova's free-list links "
		   << "encoded and checked (`-Dsecure=1`, lib/slab.h) against plain links "
		   << "(`-Dsecure=0`); the default build is `"
		   << (plain_is_other ? "secure" : "plain") << "`, the other one is `" << other
		   << "`. Above 1 is the cost of the hardening "
		   << "(docs/DESIGN.md, Decisions).\n\n";
		r.table_head({"benchmark", "secure ns/op", "plain ns/op", "secure / plain"});
		std::vector<double> rs;
		std::vector<std::string> keys = keys_with_prefix("malloc_free/");
		for (auto &k : keys_with_prefix("handle/halloc_hfree/"))
			keys.push_back(k);
		for (auto &k : keys) {
			double a = ns_op(k, sec), b = ns_op(k, pl);
			if (!std::isfinite(a) || !std::isfinite(b))
				continue;
			if (k.compare(0, 12, "malloc_free/") == 0 &&
			    k.find("threads") == std::string::npos) {
				int size = atoi(k.c_str() + 12);
				if (size >= 16 && size <= 256)
					rs.push_back(a / b);
			}
			r.row({"`" + k + "`", fmt(a), fmt(b), fmt_ratio(a / b)});
		}
		if (!rs.empty())
			md << "\nmalloc+free 16-256 B, geometric mean: secure / plain " +
				  fmt_ratio(geomean(rs))
			   << "\n";
	}
	{
		std::vector<std::string> k;
		for (const char *p : {"batch_lifo/", "batch_fifo/", "batch_random/"})
			for (auto &x : keys_with_prefix(p))
				k.push_back(x);
		r.micro_tables("1024 objects allocated, then freed in LIFO, FIFO, random order "
			       "(time per pair)",
			       k);
	}
	r.micro_tables("Producer / consumer: thread 0 allocates, thread 1 frees (time per object)",
		       keys_with_prefix("prodcons/"));
	r.micro_tables("realloc growth: one buffer grown in 256 steps to the size shown (time per "
		       "step)",
		       keys_with_prefix("realloc_growth/"));
	r.micro_tables("aligned_alloc + free (alignment/size)", keys_with_prefix("aligned_alloc/"));

	// handles
	if (results.count("handle/pin_unpin")) {
		md << "\n### mova's handles\n\nOn a private arena without kcompactd. The baseline "
		      "of "
		   << "halloc+hfree is each peer's malloc+free of the same size, from the same "
		      "run.\n\n";
		std::vector<std::string> cols = {"benchmark", "mova ns/op"};
		for (auto &p : peers)
			cols.push_back("/ " + p + " malloc+free");
		r.table_head(cols);
		for (auto &k : keys_with_prefix("handle/halloc_hfree/")) {
			std::string size = k.substr(strlen("handle/halloc_hfree/"));
			std::vector<std::string> cells = {"`" + k + "`", fmt(ns_op(k, "mova"))};
			for (auto &p : peers)
				cells.push_back(
				    fmt_ratio(ns_op(k, "mova") / ns_op("malloc_free/" + size, p)));
			r.row(cells);
		}
		md << "\n";
		r.table_head({"benchmark", "mova ns/op", "note"});
		r.row({"`handle/pin_unpin`", fmt(ns_op("handle/pin_unpin", "mova")),
		       "one handle pinned and unpinned"});
		r.row({"`handle/plain_load`", fmt(ns_op("handle/plain_load", "mova")),
		       "a load through a pointer, the baseline of deref"});
		r.row({"`handle/deref`", fmt(ns_op("handle/deref", "mova")),
		       "mova_deref + the same load, inside one long read section: " +
			   fmt_ratio(ns_op("handle/deref", "mova") /
				     ns_op("handle/plain_load", "mova")) +
			   " the plain load"});
		r.row({"`handle/deref_section`", fmt(ns_op("handle/deref_section", "mova")),
		       "mova_read_lock + mova_deref + load + mova_read_unlock"});
		for (auto &k : keys_with_prefix("handle/halloc_hfree_after_reader/")) {
			std::string size = k.substr(strlen("handle/halloc_hfree_after_reader/"));
			double before = ns_op("handle/halloc_hfree/" + size, "mova");
			r.row({"`" + k + "`", fmt(ns_op(k, "mova")),
			       "after a read section was entered: " +
				   fmt_ratio(ns_op(k, "mova") / before) + " the time before"});
		}
	}
	if (results.count("migrate/compact/4096")) {
		md << "\n### Migration and compaction throughput\n\nN objects of one size (64 MiB "
		   << "in all at quick and full scale), every other one freed, then "
		   << "`mova_compact(a, -1)` timed alone: it packs slabs, migrates, and returns "
		   << "free pageblocks to the OS. Migrated bytes are objects moved "
		   << "(`pgmigrate_success`) times their size; memcpy copies the same objects in "
		      "the "
		   << "same pattern.\n\n";
		r.table_head({"object size", "objects migrated / run", "ns per migrated object",
			      "migrated MiB/s", "memcpy MiB/s", "migration / memcpy"});
		for (auto &k : keys_with_prefix("migrate/compact/")) {
			std::string size = k.substr(strlen("migrate/compact/"));
			double mig = med(k, "mova", "bytes_per_second") / (1 << 20);
			double cpy =
			    med("migrate/memcpy/" + size, "mova", "bytes_per_second") / (1 << 20);
			r.row({size + " B", fmt(med(k, "mova", "objects_migrated"), 0),
			       fmt(med(k, "mova", "ns_per_object"), 0), fmt(mig, 0), fmt(cpy, 0),
			       std::isfinite(mig / cpy) ? fmt(mig / cpy * 100, 1) + "%" : "–"});
		}
	}

	// ---------------------------------------------------------------- macro
	struct Col {
		std::string alloc, key_variant, title;
	};
	std::vector<Col> frag_cols;
	for (auto &a : allocators) {
		if (a == "mova") {
			frag_cols.push_back({a, "malloc", "mova (mova_malloc)"});
			frag_cols.push_back({a, "handles", "mova (handles + mova_compact)"});
			frag_cols.push_back(
			    {a, "handles_kcompactd", "mova (handles, kcompactd only)"});
		} else {
			frag_cols.push_back({a, "malloc", a});
		}
	}
	if (!keys_with_prefix("frag/").empty()) {
		md << "\n## Fragmentation workload\n\nTwo threads allocate a million objects "
		      "(quick "
		   << "and full scale) of 16 B to 8 KiB, log-distributed (about 640 MiB live), "
		      "each "
		   << "written whole; 80% are freed at random; the allocator's give-back call is "
		      "made "
		   << "(by every worker thread; for mova every worker calls mova_thread_flush and "
		      "one compacts); then objects of 32 B to 16 KiB "
		      "refill "
		   << "live bytes to the peak. Resident memory is the process's anonymous resident "
		   << "memory above a baseline taken before the first allocation (the workload's "
		   << "bookkeeping is mmap'd and in the baseline), measured while the worker "
		      "threads "
		   << "are alive. mova's kcompactd-only variant makes no call and waits 5 s "
		      "instead "
		   << "(default configuration).\n\n";
		r.table_head({"allocator", "live peak MiB", "resident / live: allocated",
			      "after 80% freed", "after give-back", "after refill",
			      "give-back call ms", "peak resident MiB", "ms to allocate"});
		for (auto &c : frag_cols) {
			std::string k = "frag/" + c.key_variant + "/threads:2";
			if (!rounds_of(k, c.alloc))
				continue;
			std::string e = error_of(k, c.alloc);
			if (!e.empty() && !std::isfinite(med(k, c.alloc, "live_peak_MiB"))) {
				r.row({c.title, "error: " + e, "", "", "", "", "", "", ""});
				continue;
			}
			r.row({c.title, fmt(med(k, c.alloc, "live_peak_MiB"), 0),
			       fmt(med(k, c.alloc, "rss_over_live_alloc")),
			       fmt(med(k, c.alloc, "rss_over_live_free")),
			       "**" + fmt(med(k, c.alloc, "rss_over_live_give_back")) + "**",
			       fmt(med(k, c.alloc, "rss_over_live_refill")),
			       fmt(med(k, c.alloc, "give_back_call_ms"), 1),
			       fmt(med(k, c.alloc, "rss_peak_MiB"), 0),
			       fmt(med(k, c.alloc, "ms_alloc"), 0)});
		}
		md << "\nRatio of resident / live after the give-back call, mova / peer:\n\n";
		std::vector<std::string> cols = {"mova variant"};
		for (auto &p : peers)
			cols.push_back("/ " + p);
		r.table_head(cols);
		for (auto &c : frag_cols) {
			if (c.alloc != "mova")
				continue;
			std::string k = "frag/" + c.key_variant + "/threads:2";
			std::vector<std::string> cells = {c.title};
			for (auto &p : peers)
				cells.push_back(fmt_ratio(
				    med(k, "mova", "rss_over_live_give_back") /
				    med("frag/malloc/threads:2", p, "rss_over_live_give_back")));
			r.row(cells);
		}
		md << "\n![resident memory over time in the fragmentation workload]"
		   << "(benchmarks/frag-resident.png)\n\n"
		   << "Resident memory (solid) over time, every allocator; the phases are "
		      "allocate, "
		   << "free 80%, give back, refill, free all. Live bytes are the same for all.\n";
	}
	if (!keys_with_prefix("server/").empty()) {
		md << "\n## Server-like workload (larson-like)\n\nTwo worker threads each hold "
		      "8192 "
		   << "objects; a request frees a random one (7 in 8 among the first eighth: short "
		   << "lived) and allocates 16 B to 4 KiB in its place; after 100,000 requests a "
		   << "worker hands its objects to a new thread and exits. Resident memory "
		      "measured "
		   << "while the workers are alive.\n\n";
		r.table_head({"allocator", "M requests/s", "resident MiB", "live MiB",
			      "resident / live", "peak resident MiB", "thread handovers"});
		std::vector<Col> cols;
		for (auto &a : allocators) {
			cols.push_back({a, "malloc", a == "mova" ? "mova (mova_malloc)" : a});
			if (a == "mova")
				cols.push_back({a, "handles", "mova (handles)"});
		}
		for (auto &c : cols) {
			std::string k = "server/" + c.key_variant + "/threads:2";
			if (!rounds_of(k, c.alloc))
				continue;
			std::string e = error_of(k, c.alloc);
			if (!e.empty() && !std::isfinite(med(k, c.alloc, "items_per_second"))) {
				r.row({c.title, "error: " + e, "", "", "", "", ""});
				continue;
			}
			r.row({c.title, fmt(med(k, c.alloc, "items_per_second") / 1e6),
			       fmt(med(k, c.alloc, "rss_MiB"), 1),
			       fmt(med(k, c.alloc, "live_MiB"), 1),
			       fmt(med(k, c.alloc, "rss_over_live")),
			       fmt(med(k, c.alloc, "rss_peak_MiB"), 1),
			       fmt(med(k, c.alloc, "thread_handovers"), 0)});
		}
		md << "\nmova (mova_malloc) / peer: time per request and resident memory:\n\n";
		std::vector<std::string> hc = {"metric"};
		for (auto &p : peers)
			hc.push_back("/ " + p);
		r.table_head(hc);
		std::string k = "server/malloc/threads:2";
		std::vector<std::string> t = {"time per request"}, m = {"resident memory"};
		for (auto &p : peers) {
			t.push_back(fmt_ratio(med(k, p, "items_per_second") /
					      med(k, "mova", "items_per_second")));
			m.push_back(fmt_ratio(med(k, "mova", "rss_MiB") / med(k, p, "rss_MiB")));
		}
		r.row(t);
		r.row(m);
	}
	if (!keys_with_prefix("latency/").empty()) {
		md << "\n## Allocation latency on a fragmented heap\n\nObjects of 16 B to 8 KiB, "
		      "80% "
		   << "freed at random; then one thread frees a random object and allocates a new "
		   << "one, timing each allocation alone (the timer's own median cost subtracted). "
		   << "mova's handle variants: a private arena without kcompactd, and one with "
		   << "kcompactd on (proactiveness 100, checking every 100 ms, no CPU budget "
		      "limit) "
		   << "compacting beside the allocating thread.\n\n";
		r.table_head({"allocator", "p50 ns", "p99 ns", "p99.9 ns", "max µs", "allocations",
			      "kcompactd migrations in the window"});
		for (auto &c : frag_cols) {
			std::string k = "latency/" + c.key_variant;
			if (!rounds_of(k, c.alloc))
				continue;
			std::string title = c.title;
			if (c.key_variant == "handles")
				title = "mova (handles, no kcompactd)";
			if (c.key_variant == "handles_kcompactd")
				title = "mova (handles, kcompactd compacting)";
			std::string e = error_of(k, c.alloc);
			if (!e.empty() && !std::isfinite(med(k, c.alloc, "p50_ns"))) {
				r.row({title, "error: " + e, "", "", "", "", ""});
				continue;
			}
			double migr = med(k, c.alloc, "kcompactd_migrated");
			r.row({title, fmt(med(k, c.alloc, "p50_ns"), 0),
			       fmt(med(k, c.alloc, "p99_ns"), 0),
			       fmt(med(k, c.alloc, "p999_ns"), 0),
			       fmt(med(k, c.alloc, "max_ns") / 1e3, 1),
			       fmt(med(k, c.alloc, "allocations"), 0),
			       std::isfinite(migr) ? fmt(migr, 0) : ""});
		}
	}

	md << "\n## Throughput by size class\n\n![malloc+free throughput by size](benchmarks/"
	   << "throughput.png)\n\nMillions of malloc+free pairs per second, one thread (higher "
	   << "is better).\n";

	// ---------------------------------------------------------------- data for the plots
	{
		std::ofstream t(data_dir + "/throughput.dat");
		t << "size";
		for (auto &a : allocators)
			t << " " << a;
		t << "\n";
		for (auto &k : keys_with_prefix("malloc_free/")) {
			if (k.find("threads") != std::string::npos)
				continue;
			t << k.substr(strlen("malloc_free/"));
			for (auto &a : allocators) {
				double ips = med(k, a, "items_per_second");
				t << " " << (std::isfinite(ips) ? ips / 1e6 : NAN);
			}
			t << "\n";
		}
		std::ofstream cols(data_dir + "/throughput.columns");
		for (auto &a : allocators)
			cols << a << "\n";
	}
	{
		Json all;
		all.type = Json::Obj;
		Json m, c, arr;
		m.type = Json::Str;
		m.str = mode;
		c.type = Json::Str;
		c.str = command;
		arr.type = Json::Arr;
		arr.arr = files;
		all.obj.push_back({"mode", m});
		all.obj.push_back({"command", c});
		all.obj.push_back({"runs", arr});
		std::ofstream o(data_dir + "/results.json");
		write_json(o, all, 0);
		o << "\n";
	}
	std::ofstream out(out_md);
	out << md.str();
	if (!out) {
		fprintf(stderr, "bench-report: cannot write %s\n", out_md.c_str());
		return 1;
	}
	return 0;
}
