//! Which memories go into the prompt, without Bevy: candidates by vector similarity, ranked by
//! similarity + recency + importance, then taken in order while they fit the token budget.

use super::store::{Memory, MemoryKind};

/// How recall weighs what it finds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecallWeights {
    /// Candidates read from the vector search before ranking.
    pub candidates: usize,
    /// Below this similarity a memory is not about the question at all.
    pub min_similarity: f32,
    /// Added for a memory written just now, halving every `half_life_days`.
    pub recency: f32,
    pub half_life_days: f32,
    /// Times the memory's importance (0..1).
    pub importance: f32,
}

impl Default for RecallWeights {
    fn default() -> Self {
        Self {
            candidates: 32,
            min_similarity: 0.2,
            recency: 0.1,
            half_life_days: 30.0,
            importance: 0.1,
        }
    }
}

/// A memory chosen for a prompt, with why.
#[derive(Debug, Clone, PartialEq)]
pub struct Recalled {
    pub memory: Memory,
    pub similarity: f32,
    pub score: f32,
}

/// Ranks (memory, similarity) pairs, best first; `now` in unix seconds.
pub fn rank(found: Vec<(Memory, f32)>, now: i64, weights: &RecallWeights) -> Vec<Recalled> {
    let mut ranked: Vec<Recalled> = found
        .into_iter()
        .filter(|(_, similarity)| *similarity >= weights.min_similarity)
        .map(|(memory, similarity)| {
            let age_days = (now - memory.updated).max(0) as f32 / 86_400.0;
            let recency =
                weights.recency * 0.5f32.powf(age_days / weights.half_life_days.max(0.01));
            let score = similarity + recency + weights.importance * memory.importance;
            Recalled {
                memory,
                similarity,
                score,
            }
        })
        .collect();
    ranked.sort_by(|a, b| b.score.total_cmp(&a.score));
    ranked
}

/// The facts that open every conversation's prompt (its standing memories): ranked by
/// importance and recency alone, no question being asked yet, best first. Episodes are
/// left to [`rank`]: they are about a conversation, not about the user.
pub fn standing(memories: Vec<Memory>, now: i64, weights: &RecallWeights) -> Vec<Recalled> {
    let mut ranked: Vec<Recalled> = memories
        .into_iter()
        .filter(|memory| memory.kind == MemoryKind::Fact)
        .map(|memory| {
            let age_days = (now - memory.updated).max(0) as f32 / 86_400.0;
            let recency =
                weights.recency * 0.5f32.powf(age_days / weights.half_life_days.max(0.01));
            let score = recency + weights.importance * memory.importance;
            Recalled {
                memory,
                similarity: 0.0,
                score,
            }
        })
        .collect();
    ranked.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(b.memory.updated.cmp(&a.memory.updated))
            .then(b.memory.id.cmp(&a.memory.id))
    });
    ranked
}

/// Tokens a memory line costs in a prompt: about four characters a token (English; the chat
/// model's tokenizer is not at hand where memories are chosen), plus the bullet.
pub fn tokens_of(text: &str) -> usize {
    text.chars().count().div_ceil(4) + 2
}

/// The ranked memories that fit `budget` tokens, in rank order.
pub fn within_budget(ranked: Vec<Recalled>, budget: usize) -> Vec<Recalled> {
    let mut used = 0;
    ranked
        .into_iter()
        .filter(|recalled| {
            let cost = tokens_of(&recalled.memory.text);
            let fits = used + cost <= budget;
            if fits {
                used += cost;
            }
            fits
        })
        .collect()
}

/// The lines put in front of the message: the memories [`within_budget`] chose, **newest
/// first**. Relevance chose them; their order tells the model which is current when two of
/// them disagree ("I live in Lyon", later "I moved to Grenoble": the later one first). The
/// embedding model cannot tell such a change from two related facts (all-MiniLM-L6-v2 puts
/// that pair at 0.58, below distinct facts such as "I live in Lyon" / "my sister lives in
/// Montreal" at 0.65), and without a model there are no vectors at all: time order works for
/// both. Ties (the same second) go to the later written.
pub fn prompt_block(recalled: &[Recalled]) -> Option<String> {
    if recalled.is_empty() {
        return None;
    }
    let mut newest_first: Vec<&Recalled> = recalled.iter().collect();
    newest_first.sort_by_key(|item| std::cmp::Reverse((item.memory.updated, item.memory.id)));
    let mut block = String::from("What you remember from earlier conversations, newest first:\n");
    for item in newest_first {
        block.push_str("- ");
        block.push_str(&item.memory.text);
        block.push('\n');
    }
    Some(block)
}

/// Whether a block [`prompt_block`] wrote holds `memory`.
pub fn holds(block: &str, memory: &Memory) -> bool {
    block
        .lines()
        .any(|line| line.strip_prefix("- ") == Some(memory.text.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn memory(id: i64, text: &str, updated: i64, importance: f32) -> Memory {
        Memory {
            id,
            kind: MemoryKind::Fact,
            key: None,
            text: text.into(),
            importance,
            created: updated,
            updated,
        }
    }

    #[test]
    fn newer_and_more_important_memories_win_ties_and_the_budget_is_kept() {
        let now = 100 * 86_400;
        let weights = RecallWeights::default();
        let ranked = rank(
            vec![
                (memory(1, "old cat name Miso", 0, 0.5), 0.6),
                (memory(2, "new cat name Tofu", now, 0.5), 0.6),
                (memory(3, "unrelated", now, 1.0), 0.05),
                (memory(4, "important", now - 86_400, 1.0), 0.6),
            ],
            now,
            &weights,
        );
        let ids: Vec<i64> = ranked.iter().map(|r| r.memory.id).collect();
        assert_eq!(ids, vec![4, 2, 1], "below min_similarity dropped");
        let kept = within_budget(
            ranked,
            tokens_of("important") + tokens_of("new cat name Tofu"),
        );
        assert_eq!(kept.len(), 2);
        let block = prompt_block(&kept).expect("a block");
        // Chosen by rank, shown newest first.
        assert!(
            block.contains("- new cat name Tofu\n- important\n"),
            "{block}"
        );
        let both = rank(
            vec![
                (memory(1, "I live in Lyon", 50, 0.5), 0.7),
                (memory(2, "I moved to Grenoble", 90, 0.5), 0.5),
                (memory(3, "same second, written later", 90, 0.5), 0.3),
            ],
            now,
            &weights,
        );
        assert_eq!(both[0].memory.id, 1, "the closer one ranks first");
        let changed = prompt_block(&both).expect("a block");
        assert!(
            changed.ends_with(
                "- same second, written later\n- I moved to Grenoble\n- I live in Lyon\n"
            ),
            "{changed}"
        );
        assert_eq!(prompt_block(&[]), None);
        assert!(holds(&block, &kept[0].memory));
        let other = memory(99, "The user has a dog", 0, 0.5);
        assert!(!holds(&block, &other));
    }

    #[test]
    fn standing_memories_are_the_important_and_recent_facts() {
        let now = 100 * 86_400;
        let weights = RecallWeights::default();
        let mut episode = memory(5, "Talked about volcanoes", now, 1.0);
        episode.kind = MemoryKind::Episode;
        let ranked = standing(
            vec![
                memory(1, "old and unimportant", 0, 0.1),
                memory(2, "told today", now, 0.5),
                memory(3, "important, told last year", now - 365 * 86_400, 1.0),
                memory(4, "told six weeks ago", now - 45 * 86_400, 0.5),
                episode,
            ],
            now,
            &weights,
        );
        let ids: Vec<i64> = ranked.iter().map(|r| r.memory.id).collect();
        assert_eq!(
            ids,
            vec![2, 3, 4, 1],
            "facts only, by importance and recency"
        );
    }
}
