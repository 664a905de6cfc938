/* SPDX-License-Identifier: MIT */
/*
 * test_arena.c: the arena registry's tags (lib/arena.c). Arena tags are 17
 * bits, so after 2^17 creations a tag comes back. A handle of a destroyed
 * arena, presented to the next arena with the same tag, must be refused:
 * never another object's memory. arena.c's test hook, mv_arena_test_next_tag,
 * makes the tag come back at once; ../objects/test_lifecycle.c checks the
 * same over ordinary creations through the public API alone.
 *
 * Also the section map's tag (zone.h, MV_SECMAP_DFLT): mova_free's fast
 * path trusts a tagged entry to be the default arena's section without
 * loading the section's zone, so only the default arena's sections, those
 * mapped before it was published and after, may carry it.
 */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>

#include "mova.h"
#include "zone.h"

/* test-only, defined in lib/arena.c */
void mv_arena_test_next_tag(uint32_t tag);

static mova_arena *small_arena(void)
{
	mova_config cfg;
	mova_config_init(&cfg);
	cfg.kcompactd = 0;
	cfg.reserve_bytes = (size_t)64 << 20;
	return mova_arena_create(&cfg);
}

Test(arena, reused_tag_refuses_dead_arena_handles, .timeout = 240)
{
	for (int round = 0; round < 50; round++) {
		mova_arena *a = small_arena();
		cr_assert_not_null(a);
		mova_handle stale[40];
		for (int i = 0; i < 40; i++)
			stale[i] = mova_halloc(a, 64);
		/* some freed: their entries' generations moved on */
		for (int i = 0; i < 40; i += 3)
			mova_hfree(a, stale[i]);
		uint32_t tag = (uint32_t)(stale[1] >> 47);
		mova_arena_destroy(a);

		mv_arena_test_next_tag(tag);
		mova_arena *b = small_arena();
		cr_assert_not_null(b);
		mova_handle fresh[80];
		for (int i = 0; i < 80; i++)
			fresh[i] = mova_halloc(b, 64);
		cr_assert_eq((uint32_t)(fresh[0] >> 47), tag, "the tag came back");
		for (int i = 0; i < 40; i++) {
			cr_assert_null(mova_pin(b, stale[i]), "a dead arena's handle pinned");
			cr_assert_eq(errno, EINVAL);
			cr_assert_eq(mova_hsize(b, stale[i]), 0);
			cr_assert_null(mova_deref(b, stale[i]));
			cr_assert_eq(mova_hfree(b, stale[i]), EINVAL);
			cr_assert_eq(mova_unpin(b, stale[i]), EINVAL);
		}
		for (int i = 0; i < 80; i++)
			cr_assert_eq(mova_hfree(b, fresh[i]), 0);
		mova_arena_destroy(b);
	}
}

Test(arena, section_map_tags_the_default_arena_alone, .timeout = 60)
{
	/* the default arena: its first section, and one added later */
	void *p = mova_malloc(64), *big = mova_malloc((size_t)96 << 20);
	cr_assert(p && big);
	struct mv_section *sp = mv_section_of(p), *sb = mv_section_of(big);
	cr_assert_not_null(sp);
	cr_assert_not_null(sb);
	cr_assert_eq(((uintptr_t)sp | (uintptr_t)sb) & MV_SECMAP_DFLT, 0, "an untagged section");
	cr_assert_eq(mv_section_of_dflt(p), sp);
	cr_assert_eq(mv_section_of_dflt(big), sb);
	cr_assert_eq(mv_section_of_dflt((char *)big + ((size_t)95 << 20)),
		     mv_section_of((char *)big + ((size_t)95 << 20)));
	cr_assert_eq(sp->zone, sb->zone);

	/* a private arena's sections are in the map, untagged */
	mova_arena *a = small_arena();
	cr_assert_not_null(a);
	mova_handle h = mova_halloc(a, 64);
	cr_assert_neq(h, MOVA_NULL);
	void *q = mova_pin(a, h);
	cr_assert_not_null(q);
	struct mv_section *sq = mv_section_of(q);
	cr_assert_not_null(sq);
	cr_assert_neq(sq->zone, sp->zone);
	cr_assert_null(mv_section_of_dflt(q));
	/* mova_free refuses it (another arena's object, not this malloc's),
	 * and the object stays whole */
	memset(q, 0x5a, 64);
	mova_free(q);
	cr_assert_eq(((unsigned char *)q)[63], 0x5a);
	mova_unpin(a, h);
	cr_assert_eq(mova_hfree(a, h), 0);
	mova_arena_destroy(a);

	/* outside any section, and beyond the map */
	int local;
	cr_assert_null(mv_section_of_dflt(&local));
	cr_assert_null(mv_section_of_dflt((void *)~(uintptr_t)0));
	mova_free(big);
	mova_free(p);
}
