/* SPDX-License-Identifier: MIT */
/*
 * tcache.c: thread caches and thread records (see tcache.h). A thread's
 * record maps up to MV_TSLOTS arenas to their tcaches; when a thread uses
 * more arenas than that, the least recently used tcache is torn down.
 * The pthread key's destructor tears down all of a thread's tcaches, under
 * the registry lock so that an arena cannot be destroyed meanwhile.
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "tcache.h"

#define MV_TSLOTS 16

struct mv_tslot {
	struct mv_heap *h;
	uint64_t epoch;
	struct mv_tcache *tc;
	uint64_t last_use;
};

struct mv_thread {
	struct mv_tslot slots[MV_TSLOTS];
	uint64_t clock;
};

struct mv_tcache mv_tcache_empty = {
    .direct = {[0 ... 64] = &mv_slab_empty},
    .raw_cur = {[0 ... MV_NR_RAW_CLASSES - 1] = &mv_slab_empty},
    .mov_cur = {[0 ... MV_NR_MOV_CLASSES - 1] = &mv_slab_empty},
    .dead = 1,
};

__thread struct mv_tcache *mv_tc_default __attribute__((tls_model("initial-exec"))) =
    &mv_tcache_empty;
__thread struct mv_tls_last mv_tls_last __attribute__((tls_model("initial-exec")));
static __thread struct mv_thread *mv_self __attribute__((tls_model("initial-exec")));
/* Set by the key's destructor: this thread's caches are gone for good.
 * glibc runs __libc_thread_freeres (strerror's buffer, dlerror's, the
 * resolver's state) after every key destructor, and frees through us; a
 * record made then would be registered with a key whose destructors have
 * already run, and leak with its caches (8 KiB a thread, and a fork walks
 * every one). So a dead thread never makes a cache again: mv_tcache_of
 * answers NULL, frees take the remote path, and allocations are served
 * without a cache (malloc.c, handle.c). */
__thread bool mv_thread_dead __attribute__((tls_model("initial-exec")));

static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;

static void make_key(void)
{
	pthread_key_create(&thread_key, mv_thread_exit);
}

static struct mv_tcache *tcache_create(struct mv_heap *h)
{
	struct mv_tcache *tc = mv_meta_alloc(&h->meta, sizeof *tc);
	if (!tc)
		return NULL;
	for (unsigned i = 0; i <= 64; i++)
		tc->direct[i] = &mv_slab_empty;
	for (unsigned i = 0; i < MV_NR_RAW_CLASSES; i++)
		tc->raw_cur[i] = &mv_slab_empty;
	for (unsigned i = 0; i < MV_NR_MOV_CLASSES; i++)
		tc->mov_cur[i] = &mv_slab_empty;
	tc->heap = h;
	mv_pcp_init(&tc->pcp);
	mv_lock(&h->threads_lock);
	/* a new cache holds nothing: it has answered every request so far */
	atomic_store_explicit(&tc->flush_seen, atomic_load(&h->flush_gen), memory_order_relaxed);
	tc->decay_seen = atomic_load(&h->decay_gen);
	tc->tnext = h->tcaches;
	tc->tprev = NULL;
	if (h->tcaches)
		h->tcaches->tprev = tc;
	h->tcaches = tc;
	mv_unlock(&h->threads_lock);
	return tc;
}

/* runs on liburcu's call_rcu worker after the grace period */
static void batch_done(struct mv_rcu_batch *b)
{
	struct mv_heap *h = b->heap;
	mv_mov_free_slots(h, NULL, b->slot, b->n);
	mv_count(&h->vm, MV_VM_rcu_batches, 1);
	mv_meta_free(&h->meta, b, sizeof *b);
}

/* ------------------------------------------------------------ batches back (tcache.h) */

static void sink_put(struct mv_heap *h, struct mv_rcu_sink *k)
{
	if (atomic_fetch_sub_explicit(&k->refs, 1, memory_order_acq_rel) == 1)
		mv_meta_free(&h->meta, k, sizeof *k);
}

/* runs on liburcu's call_rcu worker after the grace period: back to the
 * owner, or freed here when the owner is gone */
static void batch_back(struct mv_rcu_batch *b)
{
	struct mv_heap *h = b->heap;
	struct mv_rcu_sink *k = b->owner;
	struct mv_rcu_batch *head = atomic_load_explicit(&k->ready, memory_order_relaxed);
	do {
		if (head == MV_SINK_CLOSED) {
			batch_done(b);
			sink_put(h, k);
			return;
		}
		b->next = head;
	} while (!atomic_compare_exchange_weak_explicit(&k->ready, &head, b, memory_order_release,
							memory_order_relaxed));
	/* b is the owner's now: not touched again */
	mv_count(&h->vm, MV_VM_rcu_batches, 1);
	sink_put(h, k);
}

/* the slots of a list of batches back to their slabs (tc: the caller's
 * cache, or NULL); the first batch kept as tc's next pending one */
static void batches_free(struct mv_heap *h, struct mv_tcache *tc, struct mv_rcu_batch *b)
{
	while (b) {
		struct mv_rcu_batch *next = b->next;
		mv_mov_free_slots(h, tc, b->slot, b->n);
		if (tc && !tc->pending) {
			b->n = 0;
			tc->pending = b;
		} else {
			mv_meta_free(&h->meta, b, sizeof *b);
		}
		b = next;
	}
}

void mv_tcache_recycle_slow(struct mv_heap *h, struct mv_tcache *tc)
{
	batches_free(h, tc, atomic_exchange_explicit(&tc->sink->ready, NULL, memory_order_acquire));
}

/* the cache is going: later batches are freed by the worker */
static void sink_close(struct mv_heap *h, struct mv_tcache *tc)
{
	struct mv_rcu_sink *k = tc->sink;
	if (!k)
		return;
	tc->sink = NULL;
	batches_free(h, NULL,
		     atomic_exchange_explicit(&k->ready, MV_SINK_CLOSED, memory_order_acquire));
	sink_put(h, k);
}

void mv_heap_recycle_all(struct mv_heap *h)
{
	/* any thread may take a stack whole; a cache on the list has its
	 * sink (sink_close runs after the unlink) */
	mv_lock(&h->threads_lock);
	for (struct mv_tcache *t = h->tcaches; t; t = t->tnext) {
		struct mv_rcu_sink *k = __atomic_load_n(&t->sink, __ATOMIC_ACQUIRE);
		if (k && atomic_load_explicit(&k->ready, memory_order_relaxed))
			batches_free(
			    h, NULL,
			    atomic_exchange_explicit(&k->ready, NULL, memory_order_acquire));
	}
	mv_unlock(&h->threads_lock);
}

void mv_tcache_flush_pending(struct mv_heap *h, struct mv_tcache *tc)
{
	struct mv_rcu_batch *b = tc->pending;
	if (!b)
		return;
	tc->pending = NULL;
	if (!b->n) {
		mv_meta_free(&h->meta, b, sizeof *b);
		return;
	}
	if (!mv_rcu_readers_ever()) {
		/* no thread ever entered a read section: nobody can hold these */
		mv_mov_free_slots(h, tc, b->slot, b->n);
		mv_meta_free(&h->meta, b, sizeof *b);
		return;
	}
	b->heap = h;
	b->fn = batch_done;
	if (!tc->sink && !tc->dead) {
		struct mv_rcu_sink *k = mv_meta_alloc(&h->meta, sizeof *k);
		if (k) {
			atomic_init(&k->ready, NULL);
			atomic_init(&k->refs, 1);
			/* published to mv_heap_recycle_all (acquire there) */
			__atomic_store_n(&tc->sink, k, __ATOMIC_RELEASE);
		}
	}
	if (tc->sink) {
		atomic_fetch_add_explicit(&tc->sink->refs, 1, memory_order_relaxed);
		b->owner = tc->sink;
		b->fn = batch_back;
	}
	mv_rcu_defer(b);
}

void mv_tcache_flush_pending_now(struct mv_heap *h, struct mv_tcache *tc)
{
	struct mv_rcu_batch *b = tc->pending;
	if (!b)
		return;
	if (b->n && mv_rcu_readers_ever() && mv_rcu_in_reader()) {
		/* we may not wait for our own read section */
		mv_tcache_flush_pending(h, tc);
		return;
	}
	tc->pending = NULL;
	if (b->n && mv_rcu_readers_ever())
		mv_rcu_synchronize();
	mv_mov_free_slots(h, tc, b->slot, b->n);
	mv_meta_free(&h->meta, b, sizeof *b);
}

void mv_tcache_defer_slot(struct mv_heap *h, struct mv_tcache *tc, void *slot)
{
	struct mv_rcu_batch *b = tc->pending;
	if (unlikely(!b)) {
		/* batches back from their grace period: one becomes the next */
		mv_tcache_recycle(h, tc);
		b = tc->pending;
	}
	if (unlikely(!b)) {
		b = mv_meta_alloc(&h->meta, sizeof *b);
		if (!b) {
			/* no memory for a batch: wait for readers here, once,
			 * unless we are one (then the slot is lost) */
			if (mv_rcu_in_reader()) {
				static _Atomic int warned;
				mv_warn_once(&warned, "hfree: out of memory inside a read section; "
						      "an object's memory is lost");
				return;
			}
			mv_rcu_synchronize();
			mv_mov_free_slots(h, tc, &slot, 1);
			return;
		}
		tc->pending = b;
	}
	b->slot[b->n++] = slot;
	if (b->n == MV_RCU_BATCH) {
		/* a reclaimer needs the memory back now, not in ~10 ms */
		if (unlikely(tc->sync_frees))
			mv_tcache_flush_pending_now(h, tc);
		else
			mv_tcache_flush_pending(h, tc);
	}
}

void mv_tcache_flush(struct mv_heap *h, struct mv_tcache *tc)
{
	mv_raw_rbuf_flush_all(tc);
	mv_tcache_recycle(h, tc);
	mv_tcache_flush_pending(h, tc);
	mv_mov_unfreeze_all(h, tc);
	mv_raw_collect_delayed(h, tc);
	mv_raw_release_kept(h, tc);
	mv_pcp_drain(&h->zone, &tc->pcp);
}

void mv_tcache_release_now(struct mv_heap *h, struct mv_tcache *tc)
{
	mv_raw_rbuf_flush_all(tc);
	mv_tcache_recycle(h, tc);
	mv_tcache_flush_pending_now(h, tc);
	mv_mov_unfreeze_all(h, tc);
	mv_raw_collect_delayed(h, tc);
	mv_raw_release_kept(h, tc);
}

void mv_tcache_flush_asked(struct mv_heap *h, struct mv_tcache *tc, uint32_t gen)
{
	mv_raw_rbuf_flush_all(tc);
	mv_tcache_recycle(h, tc);
	mv_tcache_flush_pending_now(h, tc);
	mv_mov_unfreeze_all(h, tc);
	mv_raw_collect_delayed(h, tc);
	mv_raw_release_kept(h, tc);
	mv_pcp_drain(&h->zone, &tc->pcp);
	atomic_store_explicit(&tc->flush_seen, gen, memory_order_release);
}

size_t mv_tcache_raw_surplus(const struct mv_tcache *tc)
{
	int64_t live = mv_relaxed_load(&tc->live_bytes);
	size_t held = (size_t)mv_relaxed_load(&tc->raw_pages) << MV_PAGE_SHIFT;
	return live <= 0 ? held : held > (size_t)live ? held - (size_t)live : 0;
}

void mv_tcache_decay(struct mv_heap *h, struct mv_tcache *tc, uint32_t gen)
{
	tc->decay_seen = gen;
	mv_raw_rbuf_flush_all(tc);
	mv_tcache_recycle(h, tc);
	mv_raw_collect_delayed(h, tc);
	mv_raw_decay(h, tc);
	mv_pcp_drain(&h->zone, &tc->pcp);
	/* the fast path's entries back (kcompactd pointed them away) */
	for (unsigned q = 0; q <= 64; q++)
		mv_rstore(tc->direct[q], tc->raw_cur[mv_raw_class_lut[q]]);
}

void mv_heap_ask_decay(struct mv_heap *h, size_t min_surplus)
{
	atomic_fetch_add_explicit(&h->decay_gen, 1, memory_order_relaxed);
	mv_lock(&h->threads_lock);
	for (struct mv_tcache *t = h->tcaches; t; t = t->tnext) {
		if (t->dead || mv_tcache_raw_surplus(t) <= min_surplus)
			continue;
		/* the owner may be between reading an entry and popping its
		 * slab: it pops from that slab, which is still its own */
		for (unsigned q = 0; q <= 64; q++)
			mv_rstore(t->direct[q], &mv_slab_empty);
	}
	mv_unlock(&h->threads_lock);
}

/* a cache going away hands its fast-path counts to the heap (MV_STAT) */
static inline void fstat_retire(struct mv_heap *h, struct mv_tcache *tc)
{
#if MV_STAT
	for (int i = 0; i < MV_NR_FSTAT; i++)
		mv_relaxed_add(&h->dead_fstat[i], mv_relaxed_load(&tc->fstat[i]));
#else
	(void)h;
	(void)tc;
#endif
}

void mv_tcache_destroy(struct mv_heap *h, struct mv_tcache *tc)
{
	mv_raw_rbuf_flush_all(tc);
	mv_tcache_flush_pending(h, tc);
	mv_mov_unfreeze_all(h, tc);
	mv_raw_abandon_all(h, tc);
	mv_htable_drain(&h->htab, tc->hidx, &tc->nhidx, 0);
	mv_pcp_drain(&h->zone, &tc->pcp);
	mv_lock(&h->threads_lock);
	if (tc->tprev)
		tc->tprev->tnext = tc->tnext;
	else
		h->tcaches = tc->tnext;
	if (tc->tnext)
		tc->tnext->tprev = tc->tprev;
	mv_relaxed_add(&h->dead_live_bytes, mv_relaxed_load(&tc->live_bytes));
	fstat_retire(h, tc);
	tc->dead = 1;
	mv_unlock(&h->threads_lock);
	sink_close(h, tc);
	mv_mutex_destroy(&tc->pcp.lock);
	mv_meta_free(&h->meta, tc, sizeof *tc);
}

void mv_tcache_retire_orphan(struct mv_heap *h, struct mv_tcache *tc)
{
	/* the page lists were under their lock when fork copied them */
	mv_pcp_drain(&h->zone, &tc->pcp);
	/* a remote free that had begun notifying this cache's owner ended
	 * nowhere: its slab would make every later free to it wait */
	mv_raw_fork_child_fixup(tc);
	if (tc->tprev)
		tc->tprev->tnext = tc->tnext;
	else
		h->tcaches = tc->tnext;
	if (tc->tnext)
		tc->tnext->tprev = tc->tprev;
	tc->tnext = tc->tprev = NULL;
	/* its cached handle entries are free: back to the shared list, or
	 * live_handles would count them */
	mv_htable_drain(&h->htab, tc->hidx, &tc->nhidx, 0);
	mv_relaxed_add(&h->dead_live_bytes, mv_relaxed_load(&tc->live_bytes));
	mv_relaxed_store(&tc->live_bytes, 0);
	fstat_retire(h, tc);
	tc->dead = 1;
	/* batches back to a thread that is not here: their slots to the bins */
	sink_close(h, tc);
}

static struct mv_thread *thread_self(void)
{
	struct mv_thread *self = mv_self;
	if (likely(self))
		return self;
	if (mv_thread_dead)
		return NULL;
	pthread_once(&thread_key_once, make_key);
	self = mv_meta_alloc(mv_global_meta(), sizeof *self);
	if (!self)
		return NULL;
	mv_self = self;
	pthread_setspecific(thread_key, self);
	return self;
}

struct mv_tcache *mv_tcache_get_slow(struct mv_heap *h)
{
	struct mv_thread *self = thread_self();
	if (!self) {
		errno = ENOMEM;
		return NULL;
	}
	/* The victim, when every slot is taken: the least recently used, but
	 * never the default arena's, whose cache the malloc fast path reaches
	 * through mv_tc_default without looking here (evicting it left that
	 * pointer on freed memory: a crash, or two threads on one cache). */
	struct mv_tslot *slot = NULL, *victim = NULL;
	for (unsigned i = 0; i < MV_TSLOTS; i++) {
		struct mv_tslot *s = &self->slots[i];
		if (s->h == h && s->epoch == h->epoch) {
			slot = s;
			break;
		}
		if (s->h && s->tc == mv_tc_default)
			continue;
		if (!victim || !s->h || (victim->h && s->last_use < victim->last_use))
			victim = s;
	}
	if (!slot) {
		struct mv_tcache *tc = tcache_create(h);
		if (!tc)
			return NULL;
		if (victim->h) {
			/* evict: tear down the least recently used cache if its arena lives */
			if (mv_tls_last.tc == victim->tc)
				mv_tls_last.h = NULL;
			mv_lock(&mv_heap_registry_lock);
			if (mv_heap_alive(victim->h, victim->epoch))
				mv_tcache_destroy(victim->h, victim->tc);
			mv_unlock(&mv_heap_registry_lock);
		}
		slot = victim;
		slot->h = h;
		slot->epoch = h->epoch;
		slot->tc = tc;
		if (h->is_default)
			mv_tc_default = tc;
	}
	slot->last_use = ++self->clock;
	mv_tls_last.h = h;
	mv_tls_last.epoch = h->epoch;
	mv_tls_last.tc = slot->tc;
	return slot->tc;
}

void mv_thread_exit(void *arg)
{
	struct mv_thread *self = arg;
	if (!self)
		return;
	mv_thread_dead = true;
	mv_tc_default = &mv_tcache_empty;
	mv_tls_last.h = NULL;
	mv_tls_last.tc = NULL;
	mv_lock(&mv_heap_registry_lock);
	for (unsigned i = 0; i < MV_TSLOTS; i++) {
		struct mv_tslot *s = &self->slots[i];
		if (s->h && mv_heap_alive(s->h, s->epoch))
			mv_tcache_destroy(s->h, s->tc);
		s->h = NULL;
	}
	mv_unlock(&mv_heap_registry_lock);
	mv_self = NULL;
	mv_meta_free(mv_global_meta(), self, sizeof *self);
}

struct mv_tcache *mv_tcache_transient(struct mv_heap *h)
{
	return tcache_create(h);
}

struct mv_tcache *mv_tcache_peek(struct mv_heap *h)
{
	if (mv_tls_last.h == h && mv_tls_last.epoch == h->epoch)
		return mv_tls_last.tc;
	struct mv_thread *self = mv_self;
	if (!self)
		return NULL;
	for (unsigned i = 0; i < MV_TSLOTS; i++)
		if (self->slots[i].h == h && self->slots[i].epoch == h->epoch)
			return self->slots[i].tc;
	return NULL;
}

bool mv_tcache_is_mine(const struct mv_tcache *tc)
{
	struct mv_thread *self = mv_self;
	if (!self)
		return false;
	for (unsigned i = 0; i < MV_TSLOTS; i++)
		if (self->slots[i].h && self->slots[i].tc == tc)
			return true;
	return false;
}

void mv_heap_decay_pcp(struct mv_heap *h)
{
	mv_lock(&h->threads_lock);
	for (struct mv_tcache *tc = h->tcaches; tc; tc = tc->tnext)
		mv_pcp_decay(&h->zone, &tc->pcp);
	mv_unlock(&h->threads_lock);
}

void mv_heap_drain_all_pcp(struct mv_heap *h)
{
	mv_lock(&h->threads_lock);
	for (struct mv_tcache *tc = h->tcaches; tc; tc = tc->tnext)
		mv_pcp_drain(&h->zone, &tc->pcp);
	mv_unlock(&h->threads_lock);
}
