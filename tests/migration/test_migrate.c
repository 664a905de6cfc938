/* SPDX-License-Identifier: MIT */
/*
 * test_migrate.c: migration under real concurrency, on private arenas
 * without kcompactd (a compactor thread calls mova_compact in a loop, full
 * and by order). The protocol these tests exercise, and its model, are in
 * docs/MIGRATION.md; each test names the invariants it checks.
 *  - pin_writers_lose_nothing (I1, I2): writers pin their objects, check
 *    that the version they wrote last is there, write the next, unpin,
 *    while the arena is re-fragmented and compacted; at the end every
 *    object holds exactly its writer's count, migrations happened and the
 *    writers found their objects at new addresses;
 *  - readers_see_one_version (I3, I4): readers deref published objects
 *    inside read sections and see one whole version of the object they
 *    asked for, still intact later in the same section, while replacers
 *    hfree and halloc and the compactor migrates;
 *  - hfree_races_migration (I5): threads allocate, free, hand handles to
 *    each other and free them, at small and large sizes, during
 *    compaction; every free of a live handle succeeds once, a stale handle
 *    is refused by hfree, pin and hsize, sizes and contents stay right and
 *    nothing is left live at the end;
 *  - long_pins_never_move (I1): objects pinned for the whole phase keep
 *    their address (for deref and for nested pins from other threads) and
 *    their contents, while their unpinned neighbours move; once unpinned
 *    they move too;
 *  - large_objects_move (I1, I2, I5): the same for objects of whole pages,
 *    with frees and reallocations of other sizes in between;
 *  - alloc_failure_in_read_section (I7): an allocation that fails inside a
 *    read section, while the thread's frees wait for a grace period, must
 *    return ENOMEM, not wait for a grace period its own section holds up;
 *  - thread_flush_gives_current_slabs_to_compaction: a thread's current
 *    slabs are never compaction's, until it calls mova_thread_flush;
 *  - compact_ends_while_others_free: a full compaction ends while other
 *    threads go on allocating and freeing pages (section 9, item 7).
 */
#include "mig_util.h"

#define SIZES_SMALL 5
static const size_t small_sizes[SIZES_SMALL] = {24, 48, 96, 200, 600};

/* Allocate n objects interleaved with fillers (keep - 1 fillers per kept
 * object) and free the fillers: the kept objects end up in sparse slabs
 * that compaction wants to empty. Kept object i gets tag tag0 + i. */
static void fragment(mova_arena *a, unsigned n, unsigned keep, const size_t *sizes, unsigned nsizes,
		     mova_handle *out, size_t *out_size, uint64_t tag0)
{
	unsigned total = n * keep;
	mova_handle *fill = malloc(sizeof *fill * total);
	cr_assert_not_null(fill);
	unsigned nf = 0, nk = 0;
	for (unsigned k = 0; k < total; k++) {
		size_t size = sizes[k % nsizes];
		if (k % keep == 0) {
			out[nk] = mig_new(a, size, tag0 + nk);
			out_size[nk] = size;
			nk++;
		} else {
			fill[nf] = mova_halloc(a, size);
			cr_assert_neq(fill[nf], MOVA_NULL, "halloc: errno %d", errno);
			nf++;
		}
	}
	for (unsigned i = 0; i < nf; i++)
		cr_assert_eq(mova_hfree(a, fill[i]), 0);
	free(fill);
}

/* ------------------------------------------------------------ churn */

/* Re-fragments the arena while the others run: allocates batches, frees
 * most of what it holds at random, checking each object before its free. */
struct churn {
	mova_arena *a;
	_Atomic int *stop;
	uint64_t seed;
	uint64_t tag0;
	const size_t *sizes;
	unsigned nsizes;
	unsigned long allocs;
};

#define CHURN_MAX 2048

static void *churn_main(void *arg)
{
	struct churn *c = arg;
	static _Thread_local mova_handle h[CHURN_MAX];
	static _Thread_local size_t sz[CHURN_MAX];
	static _Thread_local uint64_t tag[CHURN_MAX];
	unsigned n = 0;
	uint64_t next = c->tag0;
	while (!atomic_load(c->stop) && !mig_errors()) {
		for (unsigned k = 0; k < 128 && n < CHURN_MAX; k++, n++) {
			sz[n] = c->sizes[mig_rand(&c->seed) % c->nsizes];
			tag[n] = next++;
			h[n] = mig_new(c->a, sz[n], tag[n]);
			c->allocs++;
		}
		for (unsigned k = 0; k < 112 && n; k++) {
			unsigned i = (unsigned)(mig_rand(&c->seed) % n);
			mig_verify(c->a, h[i], sz[i], tag[i], 0, "churn");
			if (mova_hfree(c->a, h[i]))
				mig_fail("churn: hfree of a live handle failed");
			n--;
			h[i] = h[n];
			sz[i] = sz[n];
			tag[i] = tag[n];
		}
	}
	for (unsigned i = 0; i < n; i++) {
		mig_verify(c->a, h[i], sz[i], tag[i], 0, "churn at the end");
		if (mova_hfree(c->a, h[i]))
			mig_fail("churn: hfree of a live handle failed");
	}
	return NULL;
}

/* ------------------------------------------------------------ writers */

#define PW_WRITERS 3
#define PW_OBJS 1000

struct writer {
	mova_arena *a;
	_Atomic int *stop;
	mova_handle h[PW_OBJS];
	size_t size[PW_OBJS];
	uint64_t count[PW_OBJS];
	const void *last[PW_OBJS];
	uint64_t tag0;
	uint64_t seed;
	unsigned n;
	unsigned long pins, moves;
};

static void *writer_main(void *arg)
{
	struct writer *w = arg;
	while (!atomic_load(w->stop) && !mig_errors()) {
		unsigned i = (unsigned)(mig_rand(&w->seed) % w->n);
		unsigned char *p = mova_pin(w->a, w->h[i]);
		if (!p) {
			mig_fail("writer: pin of a live handle failed: errno %d", errno);
			break;
		}
		long bad = mig_check(p, w->size[i], w->tag0 + i, w->count[i]);
		if (bad >= 0) {
			const struct mig_obj *o = (const void *)p;
			mig_fail(
			    "writer: object %u holds version %llu of %llu, wanted version %llu "
			    "(first wrong byte %ld): a write was lost",
			    i, (unsigned long long)o->ver, (unsigned long long)o->tag,
			    (unsigned long long)w->count[i], bad);
		}
		w->count[i]++;
		mig_fill(p, w->size[i], w->tag0 + i, w->count[i]);
		if (w->last[i] && w->last[i] != p)
			w->moves++;
		w->last[i] = p;
		if ((w->pins & 7) == 0) {
			/* a nested pin, and deref, see the same address while pinned */
			void *q = mova_pin(w->a, w->h[i]);
			mova_read_lock();
			const void *r = mova_deref(w->a, w->h[i]);
			mova_read_unlock();
			if (q != p || r != p)
				mig_fail("writer: pinned at %p, nested pin %p, deref %p", (void *)p,
					 q, r);
			if (q && mova_unpin(w->a, w->h[i]))
				mig_fail("writer: nested unpin failed");
		}
		if (mova_unpin(w->a, w->h[i]))
			mig_fail("writer: unpin failed");
		w->pins++;
	}
	return NULL;
}

Test(migrate, pin_writers_lose_nothing, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	static struct writer w[PW_WRITERS];
	_Atomic int stop = 0;
	mova_handle *h = malloc(sizeof *h * PW_WRITERS * PW_OBJS);
	size_t *sz = malloc(sizeof *sz * PW_WRITERS * PW_OBJS);
	cr_assert(h && sz);
	fragment(a, PW_WRITERS * PW_OBJS, 8, small_sizes, SIZES_SMALL, h, sz, 1000);
	mova_stats st0 = mig_stats(a);
	for (unsigned t = 0; t < PW_WRITERS; t++) {
		memset(&w[t], 0, sizeof w[t]);
		w[t].a = a;
		w[t].stop = &stop;
		w[t].n = PW_OBJS;
		w[t].seed = 0x1234567 + t;
		/* writer t has the kept objects t, t + W, t + 2W, ...: all over the arena */
		for (unsigned i = 0; i < PW_OBJS; i++) {
			w[t].h[i] = h[i * PW_WRITERS + t];
			w[t].size[i] = sz[i * PW_WRITERS + t];
		}
	}
	/* tags: fragment() gave object k the tag 1000 + k; writer objects need tag0 + i */
	for (unsigned t = 0; t < PW_WRITERS; t++)
		for (unsigned i = 0; i < PW_OBJS; i++) {
			unsigned char *p = mova_pin(a, w[t].h[i]);
			cr_assert_not_null(p);
			mig_fill(p, w[t].size[i], (uint64_t)(t + 1) << 32 | i, 0);
			cr_assert_eq(mova_unpin(a, w[t].h[i]), 0);
		}
	for (unsigned t = 0; t < PW_WRITERS; t++)
		w[t].tag0 = (uint64_t)(t + 1) << 32;

	struct mig_compactor comp = {.a = a};
	struct churn ch = {.a = a,
			   .stop = &stop,
			   .seed = 99,
			   .tag0 = 1u << 30,
			   .sizes = small_sizes,
			   .nsizes = SIZES_SMALL};
	pthread_t tw[PW_WRITERS], tc, tch;
	for (unsigned t = 0; t < PW_WRITERS; t++)
		mig_spawn(&tw[t], writer_main, &w[t]);
	mig_spawn(&tc, mig_compactor_main, &comp);
	mig_spawn(&tch, churn_main, &ch);
	uint64_t end = mig_now_ns() + (uint64_t)mig_phase_ms(1500) * 1000000u;
	while (mig_now_ns() < end && !mig_errors())
		mig_sleep_ms(20);
	atomic_store(&comp.stop, 1);
	mig_join(tc);
	atomic_store(&stop, 1);
	for (unsigned t = 0; t < PW_WRITERS; t++)
		mig_join(tw[t]);
	mig_join(tch);
	mig_assert_no_errors();

	/* every object holds exactly what its writer wrote last */
	unsigned long pins = 0, moves = 0;
	for (unsigned t = 0; t < PW_WRITERS; t++) {
		for (unsigned i = 0; i < PW_OBJS; i++) {
			mig_verify(a, w[t].h[i], w[t].size[i], w[t].tag0 + i, w[t].count[i],
				   "after the writers");
			cr_assert_eq(mova_hfree(a, w[t].h[i]), 0);
		}
		pins += w[t].pins;
		moves += w[t].moves;
	}
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	fprintf(stderr,
		"pin_writers: %lu pins, %lu seen moved, %lu compactor rounds, %lu churn allocs, "
		"pgmigrate_success +%llu, pgmigrate_fail +%llu\n",
		pins, moves, atomic_load(&comp.rounds), ch.allocs,
		(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success),
		(unsigned long long)(st1.pgmigrate_fail - st0.pgmigrate_fail));
	cr_assert_gt(atomic_load(&comp.rounds), 0);
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success, "no migration happened");
	cr_assert_gt(moves, 0, "no writer ever found its object moved");
	cr_assert_eq(st1.live_handles, 0, "%zu handles still live", st1.live_handles);
	free(h);
	free(sz);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ readers */

#define NPUB 1024
#define RD_SIZES 6
static const size_t rd_sizes[RD_SIZES] = {24, 100, 400, 2000, 9000, 20000};

struct pubs {
	mova_arena *a;
	_Atomic int *stop;
	_Atomic mova_handle h[NPUB];
	_Atomic uint64_t ver[NPUB];
};

struct rd {
	struct pubs *pb;
	uint64_t seed;
	unsigned long reads, nulls, long_sections, moved;
};

/* p holds some whole version of object s: returns the version, or fails */
static uint64_t check_published(const unsigned char *p, unsigned s, struct pubs *pb,
				const char *when)
{
	const struct mig_obj *o = (const void *)p;
	uint64_t tag = o->tag, ver = o->ver, size = o->size;
	bool size_ok = false;
	for (unsigned k = 0; k < RD_SIZES; k++)
		size_ok |= size == rd_sizes[k];
	if (tag != s || !size_ok || ver > atomic_load(&pb->ver[s])) {
		mig_fail("reader (%s): slot %u's handle gave object %llu version %llu size %llu: "
			 "another object's memory",
			 when, s, (unsigned long long)tag, (unsigned long long)ver,
			 (unsigned long long)size);
		return 0;
	}
	long bad = mig_check(p, size, tag, ver);
	if (bad >= 0)
		mig_fail("reader (%s): object %u version %llu torn at offset %ld", when, s,
			 (unsigned long long)ver, bad);
	return ver;
}

static void *reader_main(void *arg)
{
	struct rd *r = arg;
	struct pubs *pb = r->pb;
	static _Thread_local const void *seen[NPUB];
	static _Thread_local mova_handle seen_h[NPUB];
	while (!atomic_load(pb->stop) && !mig_errors()) {
		unsigned s = (unsigned)(mig_rand(&r->seed) % NPUB);
		bool long_section = mig_rand(&r->seed) % 64 == 0;
		mova_read_lock();
		mova_handle h = atomic_load(&pb->h[s]);
		const unsigned char *p = mova_deref(pb->a, h);
		if (!p) {
			/* replaced and freed since the load: the only reason for NULL */
			if (errno != EINVAL)
				mig_fail("deref NULL with errno %d", errno);
			r->nulls++;
		} else {
			uint64_t v = check_published(p, s, pb, "first look");
			if (seen_h[s] == h && seen[s] != p)
				r->moved++;
			seen_h[s] = h;
			seen[s] = p;
			/* the address stays good until the section ends, whatever happens */
			unsigned rounds = long_section ? 200 : 1;
			for (unsigned k = 0; k < rounds && !mig_errors(); k++) {
				if (long_section)
					sched_yield();
				if (check_published(p, s, pb, "later in the section") != v)
					mig_fail("reader: object %u changed under the reader", s);
			}
			r->long_sections += long_section;
		}
		mova_read_unlock();
		r->reads++;
	}
	return NULL;
}

struct replacer {
	struct pubs *pb;
	uint64_t seed;
	unsigned long replaced;
};

/* replacements per millisecond and replacer: the test is about what readers
 * see, not about how fast deferred frees can pile up (docs/MIGRATION.md 9) */
#define RP_PER_MS 20

static void *replacer_main(void *arg)
{
	struct replacer *rp = arg;
	struct pubs *pb = rp->pb;
	uint64_t t0 = mig_now_ns();
	while (!atomic_load(pb->stop) && !mig_errors()) {
		if (rp->replaced % 64 == 0)
			while (rp->replaced > (mig_now_ns() - t0) / 1000000u * RP_PER_MS &&
			       !atomic_load(pb->stop))
				mig_sleep_ms(1);
		unsigned s = (unsigned)(mig_rand(&rp->seed) % NPUB);
		size_t size = rd_sizes[mig_rand(&rp->seed) % RD_SIZES];
		uint64_t v = atomic_fetch_add(&pb->ver[s], 1) + 1;
		mova_handle h = mova_halloc(pb->a, size);
		if (h == MOVA_NULL) {
			mova_stats st = mig_stats(pb->a);
			mig_fail("replacer: halloc(%zu): errno %d (live %zu bytes, %zu handles, "
				 "populated %zu, free %zu, rcu_batches %llu)",
				 size, errno, st.live_bytes, st.live_handles, st.populated_bytes,
				 st.free_bytes, (unsigned long long)st.rcu_batches);
			mova_stats_print(pb->a, stderr);
			break;
		}
		unsigned char *p = mova_pin(pb->a, h);
		if (!p) {
			mig_fail("replacer: pin: errno %d", errno);
			break;
		}
		mig_fill(p, size, s, v);
		mova_unpin(pb->a, h);
		mova_handle old = atomic_exchange(&pb->h[s], h);
		int e = old ? mova_hfree(pb->a, old) : 0;
		if (e)
			mig_fail("replacer: hfree of the replaced object: %d", e);
		rp->replaced++;
	}
	return NULL;
}

Test(migrate, readers_see_one_version, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	static struct pubs pb;
	_Atomic int stop = 0;
	memset(&pb, 0, sizeof pb);
	pb.a = a;
	pb.stop = &stop;
	/* the published objects, interleaved with fillers that are freed */
	mova_handle *h = malloc(sizeof *h * NPUB);
	size_t *sz = malloc(sizeof *sz * NPUB);
	cr_assert(h && sz);
	fragment(a, NPUB, 6, rd_sizes, RD_SIZES, h, sz, 0);
	for (unsigned s = 0; s < NPUB; s++) {
		unsigned char *p = mova_pin(a, h[s]);
		cr_assert_not_null(p);
		mig_fill(p, sz[s], s, 0);
		mova_unpin(a, h[s]);
		atomic_store(&pb.h[s], h[s]);
	}
	mova_stats st0 = mig_stats(a);
	struct rd r[2] = {{&pb, 11, 0, 0, 0, 0}, {&pb, 12, 0, 0, 0, 0}};
	struct replacer rp[2] = {{&pb, 21, 0}, {&pb, 22, 0}};
	struct mig_compactor comp = {.a = a};
	pthread_t tr[2], trp[2], tc;
	for (unsigned t = 0; t < 2; t++) {
		mig_spawn(&tr[t], reader_main, &r[t]);
		mig_spawn(&trp[t], replacer_main, &rp[t]);
	}
	mig_spawn(&tc, mig_compactor_main, &comp);
	uint64_t end = mig_now_ns() + (uint64_t)mig_phase_ms(1500) * 1000000u;
	while (mig_now_ns() < end && !mig_errors())
		mig_sleep_ms(20);
	atomic_store(&comp.stop, 1);
	mig_join(tc);
	atomic_store(&stop, 1);
	for (unsigned t = 0; t < 2; t++) {
		mig_join(tr[t]);
		mig_join(trp[t]);
	}
	mig_assert_no_errors();
	for (unsigned s = 0; s < NPUB; s++) {
		mova_handle x = atomic_load(&pb.h[s]);
		const struct mig_obj *o = mova_pin(a, x);
		cr_assert_not_null(o);
		size_t size = o->size;
		uint64_t ver = o->ver;
		mova_unpin(a, x);
		mig_verify(a, x, size, s, ver, "published at the end");
		cr_assert_eq(mova_hfree(a, x), 0);
	}
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	fprintf(stderr,
		"readers: %lu reads (%lu NULL, %lu long sections, %lu saw a move), %lu "
		"replacements, %lu compactor rounds, pgmigrate_success +%llu\n",
		r[0].reads + r[1].reads, r[0].nulls + r[1].nulls,
		r[0].long_sections + r[1].long_sections, r[0].moved + r[1].moved,
		rp[0].replaced + rp[1].replaced, atomic_load(&comp.rounds),
		(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success));
	cr_assert_gt(r[0].reads + r[1].reads, 0);
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success, "no migration happened");
	cr_assert_eq(st1.live_handles, 0, "%zu handles still live", st1.live_handles);
	free(h);
	free(sz);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ hfree against migration */

#define HF_THREADS 3
#define HF_RING 96
#define HF_XCH 64
#define HF_SIZES 8
static const size_t hf_sizes[HF_SIZES] = {24, 64, 160, 700, 3000, 12000, 17000, 40000};

struct xobj {
	mova_handle h;
	size_t size;
	uint64_t tag;
};

struct hfx {
	mova_arena *a;
	_Atomic int *stop;
	pthread_mutex_t lock; /* the exchange: objects handed between threads */
	struct xobj xch[HF_XCH];
};

struct hft {
	struct hfx *x;
	unsigned id;
	uint64_t seed;
	unsigned long allocs, frees, foreign_frees, stale_checks;
};

/* free a live object: once, and then its handle must be refused everywhere */
static void free_checked(mova_arena *a, struct xobj *o, struct hft *t, const char *what)
{
	mig_verify(a, o->h, o->size, o->tag, 0, what);
	int e = mova_hfree(a, o->h);
	if (e)
		mig_fail("%s: hfree of a live handle: %d", what, e);
	t->frees++;
	if ((t->frees & 3) == 0) {
		e = mova_hfree(a, o->h);
		if (e != EINVAL)
			mig_fail("%s: second hfree returned %d, not EINVAL", what, e);
		errno = 0;
		void *p = mova_pin(a, o->h);
		if (p || errno != EINVAL)
			mig_fail("%s: pin of a freed handle gave %p, errno %d", what, p, errno);
		if (p)
			mova_unpin(a, o->h);
		if (mova_hsize(a, o->h) != 0)
			mig_fail("%s: hsize of a freed handle is not 0", what);
		mova_read_lock();
		const void *q = mova_deref(a, o->h);
		mova_read_unlock();
		if (q)
			mig_fail("%s: deref of a freed handle gave %p", what, q);
		t->stale_checks++;
	}
}

static void *hf_main(void *arg)
{
	struct hft *t = arg;
	struct hfx *x = t->x;
	mova_arena *a = x->a;
	struct xobj ring[HF_RING];
	unsigned n = 0;
	uint64_t next = (uint64_t)(t->id + 1) << 40;
	while (!atomic_load(x->stop) && !mig_errors()) {
		unsigned op = (unsigned)(mig_rand(&t->seed) % 8);
		if (op < 4 && n < HF_RING) {
			/* small sizes mostly, whole pages sometimes */
			unsigned k = (unsigned)(mig_rand(&t->seed) % (HF_SIZES * 2));
			struct xobj o = {MOVA_NULL, hf_sizes[k < HF_SIZES ? k : k % 5], next++};
			o.h = mig_new(a, o.size, o.tag);
			ring[n++] = o;
			t->allocs++;
		} else if (op < 7 && n) {
			unsigned i = (unsigned)(mig_rand(&t->seed) % n);
			free_checked(a, &ring[i], t, "own free");
			ring[i] = ring[--n];
		} else if (n) {
			/* hand an object over, take another thread's in exchange */
			unsigned i = (unsigned)(mig_rand(&t->seed) % n);
			unsigned j = (unsigned)(mig_rand(&t->seed) % HF_XCH);
			pthread_mutex_lock(&x->lock);
			struct xobj got = x->xch[j];
			x->xch[j] = ring[i];
			pthread_mutex_unlock(&x->lock);
			ring[i] = ring[--n];
			if (got.h) {
				free_checked(a, &got, t, "foreign free");
				t->foreign_frees++;
			}
		}
	}
	while (n)
		free_checked(a, &ring[--n], t, "final free");
	return NULL;
}

Test(migrate, hfree_races_migration, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	static struct hfx x;
	_Atomic int stop = 0;
	memset(&x, 0, sizeof x);
	x.a = a;
	x.stop = &stop;
	pthread_mutex_init(&x.lock, NULL);
	mova_stats st0 = mig_stats(a);
	struct hft t[HF_THREADS];
	pthread_t th[HF_THREADS], tc;
	struct mig_compactor comp = {.a = a};
	for (unsigned i = 0; i < HF_THREADS; i++) {
		t[i] = (struct hft){.x = &x, .id = i, .seed = 0xabcdef + i};
		mig_spawn(&th[i], hf_main, &t[i]);
	}
	mig_spawn(&tc, mig_compactor_main, &comp);
	uint64_t end = mig_now_ns() + (uint64_t)mig_phase_ms(1500) * 1000000u;
	while (mig_now_ns() < end && !mig_errors())
		mig_sleep_ms(20);
	atomic_store(&comp.stop, 1);
	mig_join(tc);
	atomic_store(&stop, 1);
	for (unsigned i = 0; i < HF_THREADS; i++)
		mig_join(th[i]);
	mig_assert_no_errors();
	struct hft last = {.x = &x};
	for (unsigned j = 0; j < HF_XCH; j++)
		if (x.xch[j].h)
			free_checked(a, &x.xch[j], &last, "exchange at the end");
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	unsigned long allocs = 0, frees = last.frees, foreign = 0, stale = 0;
	for (unsigned i = 0; i < HF_THREADS; i++) {
		allocs += t[i].allocs;
		frees += t[i].frees;
		foreign += t[i].foreign_frees;
		stale += t[i].stale_checks;
	}
	fprintf(stderr,
		"hfree_races: %lu allocs, %lu frees (%lu foreign), %lu stale checks, %lu "
		"compactor rounds, pgmigrate_success +%llu\n",
		allocs, frees, foreign, stale, atomic_load(&comp.rounds),
		(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success));
	cr_assert_eq(allocs, frees, "%lu allocations, %lu frees", allocs, frees);
	cr_assert_eq(st1.live_handles, 0, "%zu handles still live", st1.live_handles);
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success, "no migration happened");
	pthread_mutex_destroy(&x.lock);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ long pins */

#define LP_OBJS 2000

struct lp {
	mova_arena *a;
	_Atomic int *stop;
	mova_handle *h;
	void **addr;
	size_t *size;
	unsigned n; /* objects 0, 2, 4, ... < n are pinned */
	unsigned long checks;
};

/* other threads: nested pins and derefs of the pinned objects */
static void *lp_checker(void *arg)
{
	struct lp *l = arg;
	uint64_t seed = (uint64_t)(uintptr_t)&seed | 1;
	while (!atomic_load(l->stop) && !mig_errors()) {
		unsigned i = (unsigned)(mig_rand(&seed) % (l->n / 2)) * 2;
		void *q = mova_pin(l->a, l->h[i]);
		if (q != l->addr[i])
			mig_fail("pinned object %u at %p, a nested pin gave %p", i, l->addr[i], q);
		if (q)
			mova_unpin(l->a, l->h[i]);
		mova_read_lock();
		const unsigned char *r = mova_deref(l->a, l->h[i]);
		if (r != l->addr[i])
			mig_fail("pinned object %u at %p, deref gave %p", i, l->addr[i],
				 (const void *)r);
		else if (mig_check(r, l->size[i], 5000 + i, 0) >= 0)
			mig_fail("pinned object %u changed", i);
		mova_read_unlock();
		l->checks++;
	}
	return NULL;
}

Test(migrate, long_pins_never_move, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	static mova_handle h[LP_OBJS];
	static void *addr[LP_OBJS];
	static size_t size[LP_OBJS];
	_Atomic int stop = 0;
	fragment(a, LP_OBJS, 8, small_sizes, SIZES_SMALL, h, size, 5000);
	/* the even ones are pinned for the whole phase */
	for (unsigned i = 0; i < LP_OBJS; i += 2) {
		addr[i] = mova_pin(a, h[i]);
		cr_assert_not_null(addr[i]);
	}
	for (unsigned i = 1; i < LP_OBJS; i += 2) {
		mova_read_lock();
		addr[i] = (void *)mova_deref(a, h[i]);
		mova_read_unlock();
	}
	mova_stats st0 = mig_stats(a);
	struct lp l = {a, &stop, h, addr, size, LP_OBJS, 0};
	struct lp l2 = l;
	struct mig_compactor comp = {.a = a};
	pthread_t tc, tk[2];
	mig_spawn(&tk[0], lp_checker, &l);
	mig_spawn(&tk[1], lp_checker, &l2);
	mig_spawn(&tc, mig_compactor_main, &comp);
	uint64_t end = mig_now_ns() + (uint64_t)mig_phase_ms(1000) * 1000000u;
	while ((mig_now_ns() < end || atomic_load(&comp.rounds) < 2) && !mig_errors())
		mig_sleep_ms(20);
	atomic_store(&comp.stop, 1);
	mig_join(tc);
	atomic_store(&stop, 1);
	mig_join(tk[0]);
	mig_join(tk[1]);
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	unsigned neighbours_moved = 0;
	for (unsigned i = 0; i < LP_OBJS; i++) {
		mova_read_lock();
		const void *p = mova_deref(a, h[i]);
		mova_read_unlock();
		if (i % 2 == 0)
			cr_assert_eq(p, addr[i], "pinned object %u moved from %p to %p", i, addr[i],
				     p);
		else
			neighbours_moved += p != addr[i];
		mig_verify(a, h[i], size[i], 5000 + i, 0, "after the pinned phase");
	}
	mig_assert_no_errors();
	/* unpinned, they are free to go */
	for (unsigned i = 0; i < LP_OBJS; i += 2)
		cr_assert_eq(mova_unpin(a, h[i]), 0);
	mova_compact(a, -1);
	mova_compact(a, -1);
	mova_stats st2 = mig_stats(a);
	unsigned pinned_moved_later = 0;
	for (unsigned i = 0; i < LP_OBJS; i++) {
		mova_read_lock();
		const void *p = mova_deref(a, h[i]);
		mova_read_unlock();
		pinned_moved_later += i % 2 == 0 && p != addr[i];
		mig_verify(a, h[i], size[i], 5000 + i, 0, "after unpinning");
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	}
	mig_assert_no_errors();
	fprintf(stderr,
		"long_pins: %lu checks, %u of %u neighbours moved, %u of %u pinned moved once "
		"unpinned; pinned phase: pgmigrate_success +%llu, pgmigrate_fail +%llu\n",
		l.checks + l2.checks, neighbours_moved, LP_OBJS / 2, pinned_moved_later,
		LP_OBJS / 2, (unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success),
		(unsigned long long)(st1.pgmigrate_fail - st0.pgmigrate_fail));
	cr_assert_gt(neighbours_moved, 0, "compaction moved none of the unpinned objects");
	cr_assert_gt(st1.pgmigrate_fail, st0.pgmigrate_fail,
		     "compaction never tried a pinned object");
	cr_assert_gt(pinned_moved_later, 0, "no pinned object moved once unpinned");
	cr_assert_gt(st2.pgmigrate_success, st1.pgmigrate_success);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ large objects */

#define LG_OBJS 96
#define LG_SIZES 5
static const size_t lg_sizes[LG_SIZES] = {17000, 24000, 33000, 50000, 70000};

struct lgw {
	mova_arena *a;
	_Atomic int *stop;
	mova_handle *h;
	size_t *size;
	uint64_t *count;
	const void **last;
	unsigned first, n;
	uint64_t seed;
	unsigned long pins, moves, reallocs;
};

/* pins and writes its objects; now and then frees one and allocates it
 * again at another size (the same entry comes back from the thread's cache) */
static void *lg_main(void *arg)
{
	struct lgw *w = arg;
	while (!atomic_load(w->stop) && !mig_errors()) {
		unsigned i = w->first + (unsigned)(mig_rand(&w->seed) % w->n);
		if (mig_rand(&w->seed) % 4 == 0) {
			mig_verify(w->a, w->h[i], w->size[i], 7000 + i, w->count[i],
				   "large, realloc");
			if (mova_hfree(w->a, w->h[i]))
				mig_fail("large: hfree of a live handle failed");
			w->size[i] = lg_sizes[mig_rand(&w->seed) % LG_SIZES];
			w->count[i] = 0;
			w->last[i] = NULL;
			w->h[i] = mig_new(w->a, w->size[i], 7000 + i);
			w->reallocs++;
			continue;
		}
		unsigned char *p = mova_pin(w->a, w->h[i]);
		if (!p) {
			mig_fail("large: pin of a live handle failed");
			break;
		}
		long bad = mig_check(p, w->size[i], 7000 + i, w->count[i]);
		if (bad >= 0)
			mig_fail("large: object %u (size %zu) version %llu wrong at %ld", i,
				 w->size[i], (unsigned long long)w->count[i], bad);
		size_t hs = mova_hsize(w->a, w->h[i]);
		if (hs != w->size[i])
			mig_fail("large: object %u hsize %zu, asked for %zu", i, hs, w->size[i]);
		w->count[i]++;
		mig_fill(p, w->size[i], 7000 + i, w->count[i]);
		if (w->last[i] && w->last[i] != p)
			w->moves++;
		w->last[i] = p;
		if (mova_unpin(w->a, w->h[i]))
			mig_fail("large: unpin failed");
		w->pins++;
	}
	return NULL;
}

Test(migrate, large_objects_move, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	static mova_handle h[LG_OBJS];
	static size_t size[LG_OBJS];
	static uint64_t count[LG_OBJS];
	static const void *last[LG_OBJS];
	_Atomic int stop = 0;
	fragment(a, LG_OBJS, 3, lg_sizes, LG_SIZES, h, size, 7000);
	mova_stats st0 = mig_stats(a);
	struct lgw w[2];
	pthread_t tw[2], tc;
	for (unsigned t = 0; t < 2; t++) {
		w[t] = (struct lgw){a,           &stop,    h, size, count, last, t * (LG_OBJS / 2),
				    LG_OBJS / 2, 0x55 + t, 0, 0,    0};
		mig_spawn(&tw[t], lg_main, &w[t]);
	}
	struct mig_compactor comp = {.a = a};
	mig_spawn(&tc, mig_compactor_main, &comp);
	uint64_t end = mig_now_ns() + (uint64_t)mig_phase_ms(1500) * 1000000u;
	while (mig_now_ns() < end && !mig_errors())
		mig_sleep_ms(20);
	atomic_store(&comp.stop, 1);
	mig_join(tc);
	atomic_store(&stop, 1);
	mig_join(tw[0]);
	mig_join(tw[1]);
	mig_assert_no_errors();
	for (unsigned i = 0; i < LG_OBJS; i++) {
		mig_verify(a, h[i], size[i], 7000 + i, count[i], "large at the end");
		cr_assert_eq(mova_hfree(a, h[i]), 0);
	}
	mig_assert_no_errors();
	mova_stats st1 = mig_stats(a);
	fprintf(stderr,
		"large: %lu pins, %lu seen moved, %lu reallocations, %lu compactor rounds, "
		"pgmigrate_success +%llu\n",
		w[0].pins + w[1].pins, w[0].moves + w[1].moves, w[0].reallocs + w[1].reallocs,
		atomic_load(&comp.rounds),
		(unsigned long long)(st1.pgmigrate_success - st0.pgmigrate_success));
	cr_assert_gt(st1.pgmigrate_success, st0.pgmigrate_success, "no migration happened");
	cr_assert_eq(st1.live_handles, 0, "%zu handles still live", st1.live_handles);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ waits inside a read section */

#define RS_MAX 8192

struct rs_alloc {
	mova_arena *a;
	mova_handle h[RS_MAX];
	unsigned n;
	int err;
};

/* Fill the arena from inside a read section, with frees of this thread
 * waiting for a grace period: the allocation about to fail must not wait
 * for a grace period itself (its own section would never end: I7). */
static void *rs_alloc_main(void *arg)
{
	struct rs_alloc *r = arg;
	mova_read_lock(); /* readers exist from now on: frees are deferred */
	mova_read_unlock();
	for (unsigned i = 0; i < 64; i++)
		r->h[i] = mova_halloc(r->a, 100);
	for (unsigned i = 0; i < 64; i++)
		mova_hfree(r->a, r->h[i]);
	mova_read_lock();
	while (r->n < RS_MAX) {
		mova_handle h = mova_halloc(r->a, r->n % 2 ? 3000 : 40000);
		if (h == MOVA_NULL) {
			r->err = errno;
			break;
		}
		r->h[r->n++] = h;
	}
	mova_read_unlock();
	return NULL;
}

Test(migrate, alloc_failure_in_read_section, .timeout = 120)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = 8 * MiB; /* the smallest arena: it fills at once */
	mova_arena *a = mova_arena_create(&cfg);
	cr_assert_not_null(a, "mova_arena_create: errno %d", errno);
	static struct rs_alloc r;
	memset(&r, 0, sizeof r);
	r.a = a;
	pthread_t t;
	mig_spawn(&t, rs_alloc_main, &r);
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += MIG_SANITIZED ? 30 : 10;
	int rc = pthread_timedjoin_np(t, NULL, &ts);
	/* a stuck thread keeps using the arena: leave both to the process's exit */
	cr_assert_eq(rc, 0,
		     "deadlock: halloc inside a read section, about to fail, waits for a grace "
		     "period that its own section holds up (mv_arena_reclaim -> "
		     "mv_tcache_flush_pending_now -> mv_rcu_synchronize)");
	cr_assert_eq(r.err, ENOMEM, "the arena filled with errno %d", r.err);
	for (unsigned i = 0; i < r.n; i++)
		cr_assert_eq(mova_hfree(a, r.h[i]), 0);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ thread_flush */

#define TF_THREADS 2
#define TF_OBJS 24000

struct tf {
	mova_arena *a;
	pthread_barrier_t *bar;
	unsigned id;
	mova_handle h[TF_OBJS];
	size_t size[TF_OBJS];
	bool kept[TF_OBJS];
	int flush_rc;
};

/* allocate objects of sizes over every class up to 8 KiB, free 4 in 5,
 * then wait (alive, caches full) until told to flush, then wait again */
static void *tf_main(void *arg)
{
	struct tf *t = arg;
	uint64_t rng = 1234 + t->id;
	for (unsigned i = 0; i < TF_OBJS; i++) {
		t->size[i] = MIG_MIN_SIZE + (size_t)(mig_rand(&rng) % (8193 - MIG_MIN_SIZE));
		t->h[i] = mig_new(t->a, t->size[i], t->id * TF_OBJS + i);
	}
	for (unsigned i = 0; i < TF_OBJS; i++) {
		t->kept[i] = mig_rand(&rng) % 5 == 0;
		if (!t->kept[i] && mova_hfree(t->a, t->h[i]))
			mig_fail("hfree of a live handle failed");
	}
	pthread_barrier_wait(t->bar); /* fragmented */
	pthread_barrier_wait(t->bar); /* main compacted without our caches */
	t->flush_rc = mova_thread_flush(t->a);
	pthread_barrier_wait(t->bar); /* flushed */
	pthread_barrier_wait(t->bar); /* main compacted again */
	return NULL;
}

/* mova_compact never takes another thread's current slabs; once that
 * thread calls mova_thread_flush, it can, and resident memory falls. */
Test(migrate, thread_flush_gives_current_slabs_to_compaction, .timeout = 120)
{
	cr_assert_eq(mova_thread_flush(NULL), EINVAL);
	mova_arena *a = mig_arena(0, 0, 0);
	cr_assert_eq(mova_thread_flush(a), 0, "a thread without caches for the arena");
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, TF_THREADS + 1);
	static struct tf t[TF_THREADS];
	pthread_t th[TF_THREADS];
	for (unsigned i = 0; i < TF_THREADS; i++) {
		memset(&t[i], 0, sizeof t[i]);
		t[i].a = a;
		t[i].bar = &bar;
		t[i].id = i;
		t[i].flush_rc = -1;
		mig_spawn(&th[i], tf_main, &t[i]);
	}
	pthread_barrier_wait(&bar);
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats s1 = mig_stats(a);
	pthread_barrier_wait(&bar);
	pthread_barrier_wait(&bar);
	cr_assert_eq(mova_compact(a, -1), 0);
	mova_stats s2 = mig_stats(a);
	pthread_barrier_wait(&bar);
	for (unsigned i = 0; i < TF_THREADS; i++)
		mig_join(th[i]);
	mig_assert_no_errors();
	fprintf(stderr,
		"thread_flush: live %zu KiB; compacted: resident %zu KiB; after both threads "
		"flushed and compacted again: %zu KiB, +%llu migrated\n",
		s1.live_bytes >> 10, s1.resident_bytes >> 10, s2.resident_bytes >> 10,
		(unsigned long long)(s2.pgmigrate_success - s1.pgmigrate_success));
	for (unsigned i = 0; i < TF_THREADS; i++) {
		cr_assert_eq(t[i].flush_rc, 0);
		for (unsigned k = 0; k < TF_OBJS; k++)
			if (t[i].kept[k]) {
				mig_verify(a, t[i].h[k], t[i].size[k], i * TF_OBJS + k, 0,
					   "after thread_flush");
				cr_assert_eq(mova_hfree(a, t[i].h[k]), 0);
			}
	}
	mig_assert_no_errors();
	/* the current slabs of ~100 classes, 4 in 5 slots empty, in each thread */
	cr_assert_gt(s2.pgmigrate_success, s1.pgmigrate_success,
		     "nothing migrated out of the flushed slabs");
	cr_assert_lt(s2.resident_bytes + 512 * 1024, s1.resident_bytes,
		     "resident %zu KiB after the flushes, %zu KiB before", s2.resident_bytes >> 10,
		     s1.resident_bytes >> 10);
	pthread_barrier_destroy(&bar);
	mova_arena_destroy(a);
}

/* ------------------------------------------------------------ compaction ends */

/* mova_compact(a, -1) ends while other threads go on freeing. It used to
 * give free memory back to the OS until none was left, and pages freed
 * meanwhile (allocated, backed, freed by the others) kept it going for as
 * long as they ran: hfree_races_migration, whose threads stop only after
 * the compactor, ran into its timeout that way (docs/MIGRATION.md section
 * 9, item 7). The churners here allocate and free page runs without
 * touching them, as fast as they can, and stop only when the main thread's
 * compactions are done, or after CE_GIVE_UP_MS: then the test fails
 * instead of hanging. */
#define CE_THREADS 3
#define CE_ROUNDS 6
#define CE_LIMIT_MS 15000
#define CE_GIVE_UP_MS 30000

struct ce {
	mova_arena *a;
	_Atomic int *stop;
	uint64_t seed;
	unsigned long ops;
};

static void *ce_churn(void *arg)
{
	struct ce *c = arg;
	mova_handle ring[32] = {0};
	static const size_t sizes[] = {20000, 40000, 70000, 130000, 250000};
	/* 32 allocations, then 32 frees: backed free blocks come and go */
	for (unsigned k = 0; !atomic_load(c->stop) && !mig_errors(); k++) {
		unsigned i = k % 32;
		if (ring[i]) {
			if (mova_hfree(c->a, ring[i]))
				mig_fail("churn: hfree of a live handle failed");
			ring[i] = MOVA_NULL;
		} else {
			size_t size = sizes[mig_rand(&c->seed) % 5];
			ring[i] = mova_halloc(c->a, size);
			if (!ring[i]) {
				mig_fail("churn: halloc: errno %d", errno);
				break;
			}
			/* one byte a page: the pages are really backed */
			char *p = mova_pin(c->a, ring[i]);
			for (size_t off = 0; p && off < size; off += 4096)
				p[off] = 1;
			mova_unpin(c->a, ring[i]);
		}
		c->ops++;
	}
	for (unsigned i = 0; i < 32; i++)
		if (ring[i])
			mova_hfree(c->a, ring[i]);
	return NULL;
}

struct ce_stopper {
	_Atomic int *stop;
	_Atomic int done;
	_Atomic int gave_up;
};

static void *ce_stop_main(void *arg)
{
	struct ce_stopper *s = arg;
	uint64_t end = mig_now_ns() + (uint64_t)CE_GIVE_UP_MS * 1000000u;
	while (!atomic_load(&s->done) && mig_now_ns() < end)
		mig_sleep_ms(10);
	if (!atomic_load(&s->done))
		atomic_store(&s->gave_up, 1);
	atomic_store(s->stop, 1);
	return NULL;
}

Test(migrate, compact_ends_while_others_free, .timeout = 120)
{
	mova_arena *a = mig_arena(0, 0, 0);
	_Atomic int stop = 0;
	struct ce c[CE_THREADS];
	pthread_t th[CE_THREADS], ts;
	for (unsigned i = 0; i < CE_THREADS; i++) {
		c[i] = (struct ce){.a = a, .stop = &stop, .seed = 0x5eed + i};
		mig_spawn(&th[i], ce_churn, &c[i]);
	}
	struct ce_stopper s = {.stop = &stop};
	mig_spawn(&ts, ce_stop_main, &s);
	uint64_t worst = 0;
	for (unsigned r = 0; r < CE_ROUNDS && !atomic_load(&stop); r++) {
		mig_sleep_ms(20);
		uint64_t t0 = mig_now_ns();
		cr_assert_eq(mova_compact(a, -1), 0);
		uint64_t dt = mig_now_ns() - t0;
		worst = dt > worst ? dt : worst;
	}
	atomic_store(&s.done, 1);
	mig_join(ts);
	for (unsigned i = 0; i < CE_THREADS; i++)
		mig_join(th[i]);
	mig_assert_no_errors();
	unsigned long ops = 0;
	for (unsigned i = 0; i < CE_THREADS; i++)
		ops += c[i].ops;
	fprintf(stderr,
		"compact_ends: %lu allocations and frees meanwhile; slowest compaction %llu ms\n",
		ops, (unsigned long long)(worst / 1000000u));
	cr_assert_not(atomic_load(&s.gave_up),
		      "mova_compact(a, -1) did not end in %u ms while %u threads freed pages",
		      CE_GIVE_UP_MS, CE_THREADS);
	cr_assert_lt(worst / 1000000u, CE_LIMIT_MS, "a compaction took %llu ms",
		     (unsigned long long)(worst / 1000000u));
	cr_assert_eq(mig_stats(a).live_handles, 0);
	mova_arena_destroy(a);
}
