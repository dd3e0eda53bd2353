//! More of the article in a Korean summary that has room left.
//!
//! The model's Korean summary of a Korean article copies the article's opening sentences, three at
//! most, and Korean sentences are short: the summaries of the development set used about 165 of
//! their 300 characters, while what they missed (a maker's name, a second figure, who was warned)
//! stood in the article's other central sentences. Three sentences is the limit, so such a sentence
//! is not added but joined to the summary's last one, the way Korean news itself runs two facts
//! together: `…늘었다.` + `…확대됐다.` → `…늘었고, …확대됐다.` Only endings whose connective form is
//! certain are joined (the past tense, 이다, 있다 and 없다, adjectives, the present tense of the
//! common verb stems, and their formal forms, `-습니다`, `-ㅂ니다`); the sentences joined are the
//! article's own, so nothing is said that the article does not say.
//!
//! The Korean summary of an English article translates its English summary, which fills its own
//! limit; there, central article sentences the English summary lacks ([`uncovered`]) are translated
//! beside it and added the same way ([`added`]), each translation checked as any other.

use super::ground::{is_hangul, Grounding};
use super::{is_body, similarity, Lang, Limits, Method, Summary, COVERED};

/// Article sentences joined to a summary's last sentence at most (one sentence of three clauses
/// still reads; more does not).
const MAX_JOINED: usize = 2;

/// Syllables that end a verb's stem before the present-tense ending `-ㄴ다` (`한다` → `하고`,
/// `열린다` → `열리고`, `보여준다` → `보여주고`), where a verb whose stem ends in ㄹ (which drops it
/// there) is rare or none. Others are left alone: `연다` is 열다's (`열고`), `산다` 사다's or 살다's,
/// `든다` 들다's.
const PRESENT_STEMS: [char; 19] = [
    '하', '되', '이', '리', '기', '지', '히', '주', '추', '내', '서', '나', '가', '오', '보', '르',
    '우', '키', '치',
];

/// `sentence` (a Korean declarative sentence ending `다.`) in the form that runs on into the next
/// one, ending `고,`; `None` for an ending whose connective form is not certain, a question or a
/// quotation's end.
pub fn connective(sentence: &str) -> Option<String> {
    let stem = sentence.trim_end().strip_suffix("다.")?;
    let last = stem.chars().last().filter(|&c| is_hangul(c))?;
    let before = &stem[..stem.len() - last.len_utf8()];
    // Formal speech, `-습니다` after a consonant (잡았습니다 → 잡았고) or `-ㅂ니다` after a vowel
    // (합니다 → 하고), as the model's translations often end.
    if last == '니' {
        let mut head = before.chars();
        let ending = head.next_back()?;
        let stem = head.as_str();
        return match ending {
            '습' => stem
                .chars()
                .last()
                .filter(|&c| is_hangul(c))
                .map(|_| format!("{stem}고,")),
            _ => with_final_off(ending, 17).map(|open| format!("{stem}{open}고,")),
        };
    }
    // `-는다` follows a stem that ends in a consonant and keeps it whole: 않는다 → 않고.
    if last == '는' {
        return before
            .chars()
            .last()
            .filter(|&c| is_hangul(c))
            .map(|_| format!("{before}고,"));
    }
    // The final consonant ㄴ (index 4): the present tense `-ㄴ다` of a stem ending in a vowel.
    if (last as u32 - 0xAC00) % 28 == 4 {
        return with_final_off(last, 4).map(|open| format!("{before}{open}고,"));
    }
    Some(format!("{stem}고,"))
}

/// `syllable` without its final consonant when that is the one of index `fin` (ㄴ 4, ㅂ 17) and
/// what is left is one of [`PRESENT_STEMS`]: the stem's last syllable before `-ㄴ다` or `-ㅂ니다`.
fn with_final_off(syllable: char, fin: u32) -> Option<char> {
    let code = (syllable as u32).checked_sub(0xAC00)?;
    if !is_hangul(syllable) || code % 28 != fin {
        return None;
    }
    char::from_u32(syllable as u32 - fin).filter(|open| PRESENT_STEMS.contains(open))
}

/// `summary` (a Korean summary of a Korean article, at its sentence limit) with the most central
/// article sentences (`plain`, ranked by `centrality`) that it does not cover joined to its last
/// sentence, as far as its character limit allows, in article order. Each sentence joined must pass
/// the checks on its own and joined; the summary is returned as it was when none fits.
pub fn packed(
    summary: &Summary,
    plain: &[&str],
    centrality: &[f32],
    grounding: &Grounding,
) -> Summary {
    let limits = Limits::for_lang(Lang::Ko);
    let Some((last, rest)) = summary.sentences.split_last() else {
        return summary.clone();
    };
    if summary.lang != Lang::Ko || summary.sentences.len() < limits.max_sentences {
        return summary.clone();
    }
    let has_body = plain.iter().any(|s| is_body(s));
    let mut chars = summary.text.chars().count();
    let mut joined: Vec<usize> = Vec::new();
    let mut said: Vec<String> = summary.sentences.clone();
    for i in by_centrality(centrality) {
        if joined.len() == MAX_JOINED {
            break;
        }
        let s = plain[i].trim();
        // The sentence and its space (`다.` becomes `고,`, no longer), and one to spare.
        let n = s.chars().count() + 2;
        if chars + n > limits.max_chars || !new_to(&said, s, has_body, grounding, Lang::Ko) {
            continue;
        }
        let mut trial = joined.clone();
        trial.push(i);
        trial.sort_unstable();
        let Some(sentence) = joined_sentence(last, &trial, plain) else {
            continue;
        };
        if grounding.check(&sentence, Lang::Ko, true, rest).is_err() {
            continue;
        }
        chars += n;
        said.push(s.to_string());
        joined = trial;
    }
    let Some(sentence) = joined_sentence(last, &joined, plain).filter(|_| !joined.is_empty())
    else {
        return summary.clone();
    };
    let mut out = summary.clone();
    *out.sentences.last_mut().expect("split_last found one") = sentence;
    out.text = out.sentences.join(" ");
    if out.method == Method::Generated {
        out.method = Method::Mixed;
    }
    out
}

/// Indices of the article's sentences, the most central first.
pub(super) fn by_centrality(centrality: &[f32]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..centrality.len()).collect();
    order.sort_by(|&a, &b| centrality[b].total_cmp(&centrality[a]));
    order
}

/// Whether the article sentence `s` may be added to a summary that says `said` (by joining, or by
/// [`super::complete`]): a body sentence when the article has any (a headline is no sentence of a
/// summary: `수입 전기차도 강세`), of three words or more (not a byline or a dateline), one sentence
/// ([`runs_on`]), not covered by what is said ([`COVERED`]), and passing the checks in `lang`, the
/// article's language.
pub(super) fn new_to(
    said: &[String],
    s: &str,
    has_body: bool,
    grounding: &Grounding,
    lang: Lang,
) -> bool {
    (!has_body || is_body(s))
        && s.split_whitespace().count() >= 3
        && !runs_on(s)
        && !said.iter().any(|e| similarity(e, s) >= COVERED)
        && grounding.check(s, lang, true, said).is_ok()
}

/// The most central sentences of an English article (`plain`, ranked by `centrality`) that its
/// summary `said` does not cover, up to two (`MAX_JOINED`) of `max_chars` characters or fewer and
/// without quotation marks, in article order (indices into `plain`): what the Korean summary may
/// add by translating them.
pub fn uncovered(
    said: &[String],
    plain: &[&str],
    centrality: &[f32],
    grounding: &Grounding,
    max_chars: usize,
) -> Vec<usize> {
    let has_body = plain.iter().any(|s| is_body(s));
    let mut chosen: Vec<usize> = Vec::new();
    let mut seen = said.to_vec();
    for i in by_centrality(centrality) {
        if chosen.len() == MAX_JOINED {
            break;
        }
        let s = plain[i].trim();
        // Not a quotation: the model's Korean loses who speaks (`"My wife works ..."` came out as
        // `나의 아내는 ...`, my wife, as if the summary said it).
        if s.chars().count() <= max_chars
            && !s.contains(['"', '“', '”'])
            && new_to(&seen, s, has_body, grounding, Lang::En)
        {
            seen.push(s.to_string());
            chosen.push(i);
        }
    }
    chosen.sort_unstable();
    chosen
}

/// `summary` (Korean) with the sentences `more` added in order: each a sentence of its own while the
/// summary is under its sentence limit, then joined to its last sentence ([`connective`]); each
/// only within the character limit and when `passes` accepts it as it would stand, given the
/// sentences before it. One that cannot be added is left out, and the next is tried.
pub fn added(
    summary: &Summary,
    more: &[String],
    passes: impl Fn(&str, &[String]) -> bool,
) -> Summary {
    let limits = Limits::for_lang(summary.lang);
    let mut sentences = summary.sentences.clone();
    for s in more.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let mut trial = sentences.clone();
        if trial.is_empty() {
            // Nothing to add to: an unavailable summary stays so.
            break;
        } else if trial.len() < limits.max_sentences {
            trial.push(s.to_string());
        } else {
            let Some(head) = trial.last().and_then(|l| connective(l)) else {
                continue;
            };
            *trial.last_mut().expect("not empty") = format!("{head} {s}");
        }
        let (last, rest) = trial.split_last().expect("not empty");
        if trial.join(" ").chars().count() <= limits.max_chars && passes(last, rest) {
            sentences = trial;
        }
    }
    let mut out = summary.clone();
    if sentences != summary.sentences {
        out.text = sentences.join(" ");
        out.sentences = sentences;
    }
    out
}

/// Whether `piece` (one of the article's pieces) holds a sentence end before its own, a full stop
/// after Hangul with no space behind it (`…늘었다.3월 혼인 건수는 …`): joined, it would be two
/// sentences inside one.
fn runs_on(piece: &str) -> bool {
    let body = piece
        .trim_end()
        .trim_end_matches(['.', '"', '”', '’', '\'']);
    let chars: Vec<char> = body.chars().collect();
    chars.windows(2).any(|w| is_hangul(w[0]) && w[1] == '.')
}

/// `last` with the sentences `joined` (indices into `plain`, in order) run on after it.
fn joined_sentence(last: &str, joined: &[usize], plain: &[&str]) -> Option<String> {
    let mut sentence = last.trim().to_string();
    for &i in joined {
        sentence = format!("{} {}", connective(&sentence)?, plain[i].trim());
    }
    Some(sentence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endings_run_on_only_where_their_form_is_certain() {
        let cases = [
            ("수출이 21.2% 늘었다.", Some("수출이 21.2% 늘었고,")),
            (
                "올해 처음 열리는 행사이다.",
                Some("올해 처음 열리는 행사이고,"),
            ),
            ("피해가 크다.", Some("피해가 크고,")),
            ("대책은 없다.", Some("대책은 없고,")),
            ("규제를 받지 않는다.", Some("규제를 받지 않고,")),
            ("심사를 진행한다.", Some("심사를 진행하고,")),
            ("축제가 열린다.", Some("축제가 열리고,")),
            (
                "걸림돌이었다는 점을 보여준다.",
                Some("걸림돌이었다는 점을 보여주고,"),
            ),
            ("관객이 늘어난다.", Some("관객이 늘어나고,")),
            ("수요가 늘 것으로 보인다.", Some("수요가 늘 것으로 보이고,")),
            // 열다's present: 열고, not 여고.
            ("개막식을 연다.", None),
            ("비용이 든다.", None),
            ("협력을 강화합니다.", Some("협력을 강화하고,")),
            ("아홉 명을 잡았습니다.", Some("아홉 명을 잡았고,")),
            ("국제 공항입니다.", Some("국제 공항이고,")),
            ("축제를 엽니다.", None),
            ("그것은 아니다.", None),
            ("무엇이 달라졌나?", None),
            ("“끝까지 하겠다”", None),
            ("KBO 2025.", None),
        ];
        for (sentence, want) in cases {
            assert_eq!(connective(sentence).as_deref(), want, "{sentence}");
        }
    }

    fn summary(sentences: &[&str]) -> Summary {
        Summary {
            lang: Lang::Ko,
            text: sentences.join(" "),
            sentences: sentences.iter().map(|s| s.to_string()).collect(),
            method: Method::Generated,
            rejected: Vec::new(),
        }
    }

    const ARTICLE: [&str; 6] = [
        "올해 상반기 전기차 판매량이 지난해보다 34.0% 늘었다.",
        "신규 등록 대수는 8만9,412대로 집계됐다.",
        "업계는 가격 부담이 줄어든 영향으로 풀이했다.",
        "보조금이 늘면서 현대차와 기아의 판매가 크게 늘었다.",
        "테슬라 모델Y는 수입차 가운데 가장 많이 팔렸다.",
        "전기차 판매량이 늘었다.",
    ];

    #[test]
    fn central_sentences_the_summary_lacks_join_its_last_sentence_in_article_order() {
        let grounding = Grounding::new(&ARTICLE.join(" "));
        let first = summary(&ARTICLE[..3]);
        // The fifth sentence is the most central, then the fourth; the last one is covered.
        let centrality = [0.5, 0.5, 0.5, 0.8, 0.9, 0.95];
        let out = packed(&first, &ARTICLE, &centrality, &grounding);
        assert_eq!(out.sentences.len(), 3);
        assert_eq!(out.sentences[..2], first.sentences[..2]);
        assert_eq!(
            out.sentences[2],
            "업계는 가격 부담이 줄어든 영향으로 풀이했고, 보조금이 늘면서 현대차와 기아의 판매가 \
             크게 늘었고, 테슬라 모델Y는 수입차 가운데 가장 많이 팔렸다."
        );
        assert_eq!(out.text, out.sentences.join(" "));
        assert_eq!(out.method, Method::Mixed);
        assert!(out.text.chars().count() <= 300);
    }

    #[test]
    fn translated_extras_are_added_as_sentences_then_joined_and_only_where_they_fit_and_pass() {
        let two = summary(&["경찰은 42명을 검거했다.", "조직은 필리핀에서 운영됐습니다."]);
        let more = [
            "이용자 중 청소년이 많았습니다.".to_string(),
            "경찰은 87억 원을 동결했다.".to_string(),
            "거절될 문장이다.".to_string(),
            "가".repeat(300),
        ];
        let out = added(&two, &more, |s, _| !s.contains("거절"));
        assert_eq!(
            out.sentences,
            [
                "경찰은 42명을 검거했다.",
                "조직은 필리핀에서 운영됐습니다.",
                "이용자 중 청소년이 많았고, 경찰은 87억 원을 동결했다.",
            ]
        );
        assert_eq!(out.text, out.sentences.join(" "));
        // What the check sees: the sentence as it would stand, after the ones before it.
        let seen = std::cell::RefCell::new(Vec::new());
        let _ = added(&two, &more[..1], |s, before| {
            seen.borrow_mut().push((s.to_string(), before.len()));
            true
        });
        assert_eq!(seen.into_inner(), [(more[0].clone(), 2)]);
        // Nothing is added to an unavailable summary.
        assert!(added(&summary(&[]), &more, |_, _| true)
            .sentences
            .is_empty());
    }

    #[test]
    fn the_extras_are_central_sentences_the_summary_does_not_cover_in_article_order() {
        let article = [
            "Police arrested 42 people in a betting ring.",
            "The ring ran 11 websites from the Philippines.",
            "Many of the users were teenagers, police said.",
            "Police froze 8.7 billion won in assets.",
            "Police arrested 42 people.",
            "\"We will find them all,\" a police officer said.",
        ];
        let grounding = Grounding::new(&article.join(" "));
        let said = vec![article[0].to_string(), article[1].to_string()];
        // The fifth is the most central but covered, the last a quotation; the third is too long
        // for 40 characters.
        let centrality = [0.9, 0.8, 0.5, 0.6, 0.95, 0.99];
        assert_eq!(
            uncovered(&said, &article, &centrality, &grounding, 200),
            [2, 3]
        );
        assert_eq!(uncovered(&said, &article, &centrality, &grounding, 40), [3]);
    }

    #[test]
    fn a_piece_holding_two_sentences_is_not_joined() {
        assert!(runs_on(
            "혼인 건수도 늘었다.3월 혼인 건수는 1만9,181건이다."
        ));
        assert!(!runs_on("금리는 연 3.12∼5.43%로 집계됐다."));
        assert!(!runs_on("“끝까지 하겠다.”"));
        let article = [
            "시장이 커졌다.",
            "판매가 34.0% 늘었다.",
            "업계는 늘었다.3월에도 늘었다고 본다.",
        ];
        let grounding = Grounding::new(&article.join(" "));
        let first = summary(&[
            "시장이 아주 크게 커졌다.",
            "판매가 34.0% 늘었다.",
            "시장이 커졌다.",
        ]);
        let out = packed(&first, &article, &[0.1, 0.1, 0.9], &grounding);
        assert_eq!(out.text, first.text);
    }

    #[test]
    fn a_summary_without_room_or_without_a_joinable_ending_stays_as_it_was() {
        let grounding = Grounding::new(&ARTICLE.join(" "));
        let centrality = [0.5, 0.5, 0.5, 0.8, 0.9, 0.95];
        // Under the sentence limit: `complete` adds whole sentences there, not this.
        let short = summary(&ARTICLE[..2]);
        assert_eq!(
            packed(&short, &ARTICLE, &centrality, &grounding).text,
            short.text
        );
        // A last sentence whose connective form is not certain is not run on.
        let open = summary(&[ARTICLE[0], ARTICLE[1], "업계는 오늘 설명회를 연다."]);
        assert_eq!(
            packed(&open, &ARTICLE, &centrality, &grounding).text,
            open.text
        );
        // Nothing fits in what is left of 300 characters.
        let long = "가".repeat(95) + "다.";
        let full = summary(&[&long, &long, &long]);
        assert_eq!(
            packed(&full, &ARTICLE, &centrality, &grounding).text,
            full.text
        );
    }
}
