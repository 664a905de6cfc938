/* SPDX-License-Identifier: MIT */
/* options.c: see options.h. */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "diag.h"
#include "mempolicy.h"

struct mv_process_opts mv_popts;

void mova_config_init(mova_config *cfg)
{
	memset(cfg, 0, sizeof *cfg);
#define MV_INIT_C(name, type, def) cfg->name = def;
#define MV_INIT_P(name, type, def)
#define MV_INIT(kind, name, type, def, min, max, doc) MV_INIT_##kind(name, type, def)
	MV_OPTIONS(MV_INIT)
#undef MV_INIT
#undef MV_INIT_C
#undef MV_INIT_P
}

static int check_range(unsigned long long v, unsigned long long min, unsigned long long max)
{
	return v < min || v > max;
}

int mova_config_check(const mova_config *cfg, const char **msg)
{
	const char *m = NULL;
	if (!cfg) {
		if (msg)
			*msg = NULL;
		return 0;
	}
	static __thread char buf[160];
#define MV_CHECK_C(name, min, max)                                                      \
	if (!m && check_range((unsigned long long)cfg->name, (unsigned long long)(min), \
			      (unsigned long long)(max))) {                             \
		snprintf(buf, sizeof buf, "%s is out of range (%llu .. %llu)", #name,   \
			 (unsigned long long)(min), (unsigned long long)(max));         \
		m = buf;                                                                \
	}
#define MV_CHECK_P(name, min, max)
#define MV_CHECK(kind, name, type, def, min, max, doc) MV_CHECK_##kind(name, min, max)
	MV_OPTIONS(MV_CHECK)
#undef MV_CHECK
#undef MV_CHECK_C
#undef MV_CHECK_P
	unsigned pbo = cfg->pageblock_order ? cfg->pageblock_order : MV_DEFAULT_PAGEBLOCK_ORDER;
	if (!m && pbo < MV_MIN_PAGEBLOCK_ORDER)
		m = "pageblock_order must be 0 (default) or 6 .. 10";
	size_t pb_bytes = MV_PAGE_SIZE << pbo;
	size_t reserve = cfg->reserve_bytes ? cfg->reserve_bytes : MV_MAX_RESERVE;
	if (!m && reserve < 4 * pb_bytes)
		m = "reserve_bytes must hold at least 4 pageblocks";
	if (!m && cfg->cma_bytes > reserve / 2)
		m = "cma_bytes must be at most half of reserve_bytes";
	if (!m && cfg->max_handles && cfg->max_handles < 1024)
		m = "max_handles must be 0 (default) or at least 1024";
	if (!m && cfg->limit_bytes && cfg->limit_bytes < 2 * pb_bytes)
		m = "limit_bytes must be 0 (no budget) or at least two pageblocks";
	if (!m) {
		struct mv_numa n = {0};
		struct mv_mempolicy pol;
		const char *why = NULL;
		mv_numa_probe(cfg->numa_nodes, &n.online, &n.nr_nodes);
		if (mv_mpol_parse(&n, cfg->mempolicy, (const unsigned long *)&cfg->mempolicy_nodes,
				  65, &pol, &why)) {
			snprintf(buf, sizeof buf, "mempolicy/mempolicy_nodes: %s", why);
			m = buf;
		}
	}
	if (msg)
		*msg = m;
	return m ? EINVAL : 0;
}

void mv_config_resolve(const mova_config *in, mova_config *out)
{
	if (in)
		*out = *in;
	else
		mova_config_init(out);
	if (!out->pageblock_order)
		out->pageblock_order = MV_DEFAULT_PAGEBLOCK_ORDER;
	size_t pb_bytes = MV_PAGE_SIZE << out->pageblock_order;
	if (!out->reserve_bytes)
		out->reserve_bytes = MV_MAX_RESERVE; /* no limit but the handle word's */
	out->reserve_bytes = mv_align_up(out->reserve_bytes, pb_bytes);
	if (out->reserve_bytes > MV_MAX_RESERVE)
		out->reserve_bytes = MV_MAX_RESERVE;
	out->cma_bytes = mv_align_up(out->cma_bytes, pb_bytes);
	/* retain_bytes 0 stays 0: sized from the arena's resident memory
	 * (mv_kcompactd_retain_pageblocks) */
	if (!out->max_handles) {
		size_t n = out->reserve_bytes / 64;
		out->max_handles = n > UINT32_MAX - 1 ? UINT32_MAX - 1 : n;
	}
}

/* ---- MOVA_CONF parsing, without allocating ---- */

static bool parse_number(const char *s, size_t len, bool bytes, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i = 0;
	if (!len)
		return false;
	for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
		unsigned long long d = (unsigned long long)(s[i] - '0');
		if (v > (ULLONG_MAX - d) / 10)
			return false;
		v = v * 10 + d;
	}
	if (i == 0)
		return false;
	if (i < len) {
		if (!bytes || i + 1 != len)
			return false;
		unsigned shift;
		switch (s[i]) {
		case 'k':
		case 'K': shift = 10; break;
		case 'm':
		case 'M': shift = 20; break;
		case 'g':
		case 'G': shift = 30; break;
		case 't':
		case 'T': shift = 40; break;
		default: return false;
		}
		if (v > (ULLONG_MAX >> shift))
			return false;
		v <<= shift;
	}
	*out = v;
	return true;
}

/* thp's names: never, madvise, always (a number is taken too) */
static bool parse_thp(const char *s, size_t len, unsigned long long *out)
{
	static const struct {
		const char *name;
		unsigned v;
	} names[] = {
	    {"never", MOVA_THP_NEVER}, {"madvise", MOVA_THP_MADVISE}, {"always", MOVA_THP_ALWAYS}};
	for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
		if (len == strlen(names[i].name) && !memcmp(s, names[i].name, len)) {
			*out = names[i].v;
			return true;
		}
	return parse_number(s, len, false, out);
}

static bool parse_value(enum mv_opt_type type, const char *s, size_t len, unsigned long long *out)
{
	if (type == MV_OPT_THP)
		return parse_thp(s, len, out);
	return parse_number(s, len, type == MV_OPT_BYTES, out);
}

void mv_options_parse(const char *conf, mova_config *cfg)
{
	const char *p = conf;
	while (p && *p) {
		const char *end = strchr(p, ',');
		size_t len = end ? (size_t)(end - p) : strlen(p);
		const char *colon = memchr(p, ':', len);
		if (len == 0) {
			p = end ? end + 1 : NULL;
			continue;
		}
		if (!colon) {
			mv_warn("MOVA_CONF: '%.*s' is not key:value; ignored", (int)len, p);
			p = end ? end + 1 : NULL;
			continue;
		}
		size_t klen = (size_t)(colon - p);
		const char *val = colon + 1;
		size_t vlen = len - klen - 1;
		bool known = false;
		unsigned long long v;
#define MV_SET_C(name) cfg->name = (__typeof__(cfg->name))v;
#define MV_SET_P(name) mv_popts.name = (int)v;
#define MV_PARSE(kind, name, type, def, min, max, doc)                                            \
	if (!known && klen == sizeof(#name) - 1 && !memcmp(p, #name, klen)) {                     \
		known = true;                                                                     \
		if (!parse_value(type, val, vlen, &v) ||                                          \
		    check_range(v, (unsigned long long)(min), (unsigned long long)(max))) {       \
			if (type == MV_OPT_THP)                                                   \
				mv_warn("MOVA_CONF: bad value '%.*s' for %s (want never, "        \
					"madvise or always); ignored",                            \
					(int)vlen, val, #name);                                   \
			else                                                                      \
				mv_warn("MOVA_CONF: bad value '%.*s' for %s (want %s in %llu .. " \
					"%llu); "                                                 \
					"ignored",                                                \
					(int)vlen, val, #name,                                    \
					type == MV_OPT_BYTES                                      \
					    ? "bytes, with an optional k/M/G/T suffix,"           \
					    : "a number",                                         \
					(unsigned long long)(min), (unsigned long long)(max));    \
		} else {                                                                          \
			MV_SET_##kind(name)                                                       \
		}                                                                                 \
	}
		MV_OPTIONS(MV_PARSE)
#undef MV_PARSE
#undef MV_SET_C
#undef MV_SET_P
		if (!known)
			mv_warn("MOVA_CONF: unknown key '%.*s'; ignored", (int)klen, p);
		p = end ? end + 1 : NULL;
	}
}
