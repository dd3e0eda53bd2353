//! Whether an English spelling can be the sound of a Korean name.
//!
//! The 1.5B model knows how famous names are spelled (퀄컴 = Qualcomm) but guesses at rare ones, and its
//! guesses are other real names: 남양주 came out as `Gyeongnam`, 앤디 재시 as `Andy Reese`. A translation
//! that swaps one place or person for another is unfaithful however fluent it reads, so a rare English
//! name is accepted for a Korean one only when their consonants agree. Both sides are reduced to a
//! consonant skeleton: the Korean through Revised Romanization, the English through its spelling, with
//! the letters that Korean borrowing merges (c/k/q/g, b/p/f/v, d/t, j/z/ch, l/r) made one, vowels,
//! `h`, `w`, `y` and an `r` before a consonant (Zucke*r*berg = 저커버그) dropped, and doubles collapsed.
//! Surnames with customary spellings (이 = Lee, 박 = Park) count in either name order.

use super::ground::is_hangul;

const INITIALS: [&str; 19] = [
    "g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p",
    "h",
];
const VOWELS: [&str; 21] = [
    "a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we",
    "wi", "yu", "eu", "ui", "i",
];
const FINALS: [&str; 28] = [
    "", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p",
    "t", "t", "ng", "t", "t", "k", "t", "p", "t",
];

/// Customary English spellings of common Korean surnames.
const SURNAMES: [(&str, &[&str]); 30] = [
    ("이", &["Lee", "Yi", "Rhee"]),
    ("김", &["Kim"]),
    ("박", &["Park", "Pak"]),
    ("최", &["Choi"]),
    ("정", &["Jung", "Chung", "Jeong"]),
    ("강", &["Kang"]),
    ("조", &["Cho", "Jo"]),
    ("윤", &["Yoon", "Yun"]),
    ("장", &["Jang", "Chang"]),
    ("임", &["Lim", "Im"]),
    ("한", &["Han"]),
    ("오", &["Oh"]),
    ("서", &["Seo", "Suh"]),
    ("신", &["Shin"]),
    ("권", &["Kwon"]),
    ("황", &["Hwang"]),
    ("안", &["Ahn"]),
    ("송", &["Song"]),
    ("유", &["Yoo", "Yu"]),
    ("류", &["Ryu", "Yoo"]),
    ("전", &["Jeon", "Chun"]),
    ("홍", &["Hong"]),
    ("고", &["Ko", "Koh"]),
    ("문", &["Moon"]),
    ("양", &["Yang"]),
    ("손", &["Son", "Sohn"]),
    ("배", &["Bae"]),
    ("백", &["Baek", "Paik"]),
    ("허", &["Heo", "Huh"]),
    ("노", &["Roh", "Noh"]),
];

/// Words that name a kind of place rather than the place, on either side: 남양주시 = Namyangju City.
const KOREAN_SUFFIXES: [char; 11] = [
    '시', '군', '구', '도', '읍', '면', '동', '리', '역', '선', '섬',
];
const ENGLISH_SUFFIXES: [&str; 12] = [
    "city", "county", "district", "province", "town", "township", "village", "station", "line",
    "island", "ward", "borough",
];

/// Hangul in Revised Romanization, syllable by syllable (no sound changes across syllables); other
/// characters are kept.
pub fn romanize(korean: &str) -> String {
    let mut out = String::new();
    for c in korean.chars() {
        if is_hangul(c) {
            let i = c as u32 - 0xAC00;
            out.push_str(INITIALS[(i / (21 * 28)) as usize]);
            out.push_str(VOWELS[(i / 28 % 21) as usize]);
            out.push_str(FINALS[(i % 28) as usize]);
        } else {
            out.push(c);
        }
    }
    out
}

/// A Korean name spelled the Revised Romanization way, each word capitalised, a place-kind suffix
/// set off as the convention has it: 남양주시 = `Namyangju-si`, 진접읍 = `Jinjeop-eup`, 당고개역 =
/// `Danggogae Station`.
pub fn display(korean: &str) -> String {
    korean
        .split_whitespace()
        .map(|w| {
            let (stem, suffix) = match w.strip_suffix(KOREAN_SUFFIXES) {
                Some(stem) if stem.chars().count() >= 2 => {
                    let suffix = &w[stem.len()..];
                    let english = match suffix {
                        "역" => " Station".to_string(),
                        "선" => " Line".to_string(),
                        "섬" => " Island".to_string(),
                        other => format!("-{}", romanize(other)),
                    };
                    (stem, english)
                }
                _ => (w, String::new()),
            };
            let r = romanize(stem);
            let mut cs = r.chars();
            let head: String = cs
                .next()
                .map(|f| f.to_uppercase().chain(cs).collect())
                .unwrap_or_default();
            head + &suffix
        })
        .collect::<Vec<String>>()
        .join(" ")
}

/// The consonant skeleton of a Latin spelling. Korean borrowing drops an `r` before a consonant
/// (저커버그 = Zuckerberg) or keeps it as 르 (바르셀로나 = Barcelona): `keep_r` picks which.
fn skeleton(latin: &str, keep_r: bool) -> String {
    let s: Vec<char> = latin
        .to_lowercase()
        .chars()
        .filter(|c| c.is_ascii_alphabetic())
        .collect();
    let vowel = |c: Option<&char>| c.is_some_and(|c| "aeiouy".contains(*c));
    let mut out = String::new();
    let mut i = 0;
    while i < s.len() {
        let next = s.get(i + 1);
        let class = match s[i] {
            'c' if next == Some(&'h') => {
                i += 1;
                // chr/chl sound k (Christopher); otherwise ch is 츠/치 (j).
                Some(if matches!(s.get(i + 1), Some('r' | 'l')) {
                    'k'
                } else {
                    'j'
                })
            }
            'c' if matches!(next, Some('e' | 'i' | 'y')) => Some('s'),
            'c' | 'k' | 'q' => Some('k'),
            // ng at the end of a syllable is one sound (Samsung = 삼성).
            'g' if i > 0 && s[i - 1] == 'n' && !vowel(next) => None,
            'g' => Some('k'),
            'j' | 'z' => Some('j'),
            's' => Some('s'),
            'x' => {
                push(&mut out, 'k');
                Some('s')
            }
            'b' | 'p' | 'f' | 'v' => Some('p'),
            'd' | 't' => Some('t'),
            'l' => Some('l'),
            'r' if keep_r || vowel(next) => Some('l'),
            'm' => Some('m'),
            'n' => Some('n'),
            _ => None,
        };
        if let Some(c) = class {
            push(&mut out, c);
        }
        i += 1;
    }
    out
}

fn push(out: &mut String, c: char) {
    if !out.ends_with(c) {
        out.push(c);
    }
}

/// The skeletons a Korean name may have: as romanized, without a place-kind suffix, and with a
/// customary surname spelling before or after the given name.
fn korean_skeletons(korean: &str) -> Vec<String> {
    let words: String = korean.split_whitespace().collect();
    let mut forms = vec![romanize(&words)];
    if let Some(stem) = words.strip_suffix(KOREAN_SUFFIXES) {
        if stem.chars().count() >= 2 {
            forms.push(romanize(stem));
        }
    }
    let mut chars = words.chars();
    if let Some(first) = chars.next() {
        let given = chars.as_str();
        let n = given.chars().count();
        if (1..=3).contains(&n) {
            if let Some((_, spellings)) = SURNAMES.iter().find(|(s, _)| s.starts_with(first)) {
                for s in *spellings {
                    forms.push(format!("{s}{}", romanize(given)));
                    forms.push(format!("{}{s}", romanize(given)));
                }
            }
        }
    }
    forms.iter().map(|f| skeleton(f, false)).collect()
}

/// The skeletons of an English name: whole, and without a trailing place-kind word.
fn english_skeletons(english: &str) -> Vec<String> {
    let mut forms = vec![english.to_string()];
    let words: Vec<&str> = english.split_whitespace().collect();
    if words.len() > 1 && ENGLISH_SUFFIXES.contains(&words[words.len() - 1].to_lowercase().as_str())
    {
        forms.push(words[..words.len() - 1].join(" "));
    }
    forms
        .iter()
        .flat_map(|f| [skeleton(f, false), skeleton(f, true)])
        .collect()
}

/// Whether `english` can be the sound of the Korean name `korean` (see the module comment). Latin
/// letters already in `korean` (LG 트윈스) take part as written.
pub fn sounds_alike(korean: &str, english: &str) -> bool {
    let k = korean_skeletons(korean);
    english_skeletons(english)
        .iter()
        .any(|e| !e.is_empty() && k.contains(e))
}

/// How far the Hangul `korean` is from being the sound of the English name `english`, when it may be
/// a garbled spelling of it (네이비코퍼 for Nvidia Corp, 아스턴 벨라울드 for Aston Villa): the consonant
/// skeletons (the name's of four sounds or more, the Hangul's of three or more) open with the same
/// sound and are at most two edits apart, a third of the longer at most. `None` when they are further
/// apart, or too short to tell: 상원 and Senate share s-n, and the verb 필요했어요 (p-l-s) is one edit
/// from Varga (p-l-k).
pub fn garbled_distance(korean: &str, english: &str) -> Option<usize> {
    let wanted = english_skeletons(english);
    korean_skeletons(korean)
        .iter()
        .flat_map(|k| wanted.iter().map(move |e| (k, e)))
        .filter(|(k, e)| k.len() >= 3 && e.len() >= 4 && k[..1] == e[..1])
        .map(|(k, e)| (strsim::levenshtein(k, e), k.len().max(e.len())))
        .filter(|&(d, longer)| d <= 2 && 3 * d <= longer)
        .map(|(d, _)| d)
        .min()
}

/// Whether `word`, one word of a longer English name whose other words are translated, is heard at
/// the start of a word of the Korean name `korean`: its consonant skeleton, of three sounds or more,
/// opens that word's (부산국제영화제 opens with the sound of Busan in Busan International Film
/// Festival). Anywhere else would be too loose: `Gyeongnam` lies across 경기 남양주. Words are runs of
/// Hangul (`KB국민·신한·하나` holds 신한). Gives the Korean word.
pub fn heard_within<'k>(korean: &'k str, word: &str) -> Option<&'k str> {
    let heard: Vec<String> = [skeleton(word, false), skeleton(word, true)]
        .into_iter()
        .filter(|e| e.len() >= 3)
        .collect();
    hangul_words(korean).find(|k| {
        korean_skeletons(k)
            .iter()
            .any(|s| heard.iter().any(|e| s.starts_with(e.as_str())))
    })
}

/// The runs of Hangul in `text`, its Korean words (`KB국민·신한·하나` holds 국민, 신한 and 하나).
fn hangul_words(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !is_hangul(c))
        .filter(|k| !k.is_empty())
}

/// The Hangul word of `korean` whose opening syllables (two or more), romanized, spell `word`
/// letter for letter (case, hyphens and the customary `shi` of 시 and `woo` of 우 aside): `Shinhan`
/// for the 신한 of `KB국민·신한·하나`, `Woori` for 우리은행. For names whose consonant skeleton is too
/// short to be heard ([`heard_within`]: s-n for Shinhan, as h is not counted), an exact spelling is
/// evidence enough.
pub fn spelled_within<'k>(korean: &'k str, word: &str) -> Option<&'k str> {
    let letters: String = word
        .to_lowercase()
        .replace("shi", "si")
        .replace("woo", "u")
        .chars()
        .filter(char::is_ascii_alphabetic)
        .collect();
    if letters.len() < 3 {
        return None;
    }
    hangul_words(korean).find(|k| {
        k.char_indices()
            .map(|(at, c)| at + c.len_utf8())
            .skip(1)
            .any(|end| romanize(&k[..end]) == letters)
    })
}

/// The Korean word of `text` (particles allowed after it) that `english` is the sound of, if any. Only
/// names with at least three consonant sounds are matched this way: shorter skeletons (Meta: m-t) are
/// shared by too many unrelated words.
pub fn heard_in<'t>(text: &'t str, english: &str) -> Option<&'t str> {
    let wanted = english_skeletons(english);
    if wanted.iter().all(|w| w.len() < 3) {
        return None;
    }
    for word in hangul_words(text) {
        // Without two trailing syllables, one, or none (남양주에서, 인플루엔자가): the shortest stem
        // that matches, so a particle of vowels alone (에) is not taken into the name.
        let ends: Vec<usize> = word.char_indices().map(|(i, _)| i).skip(2).collect();
        let cut: Vec<usize> = ends.into_iter().rev().take(2).collect();
        for end in cut.into_iter().rev().chain(std::iter::once(word.len())) {
            let stem = &word[..end];
            if korean_skeletons(stem)
                .iter()
                .any(|k| k.len() >= 3 && wanted.contains(k))
            {
                return Some(stem);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revised_romanization_of_syllables() {
        assert_eq!(romanize("남양주"), "namyangju");
        assert_eq!(romanize("퀄컴"), "kwolkeom");
        assert_eq!(romanize("경기"), "gyeonggi");
        assert_eq!(display("진접 오남읍"), "Jinjeop Onam-eup");
        assert_eq!(display("경기 남양주시"), "Gyeonggi Namyangju-si");
        assert_eq!(display("당고개역"), "Danggogae Station");
        assert!(sounds_alike("당고개역", &display("당고개역")));
        assert!(sounds_alike("남양주시", &display("남양주시")));
    }

    #[test]
    fn known_spellings_sound_alike() {
        for (ko, en) in [
            ("퀄컴", "Qualcomm"),
            ("저커버그", "Zuckerberg"),
            ("아마존", "Amazon"),
            ("메타", "Meta"),
            ("삼성", "Samsung"),
            ("이재용", "Lee Jae-yong"),
            ("이재용", "Jae-yong Lee"),
            ("남양주시", "Namyangju City"),
            ("남양주", "Namyangju"),
            ("오남읍", "Onam-eup"),
            ("서울", "Seoul"),
            ("부산", "Busan"),
            ("인천", "Incheon"),
            ("현대", "Hyundai"),
            ("넷플릭스", "Netflix"),
            ("크리스티아노 아몬", "Cristiano Amon"),
            ("앤디 재시", "Andy Jassy"),
            ("구글", "Google"),
            ("바르셀로나", "Barcelona"),
            ("비셀 고베", "Vissel Kobe"),
        ] {
            assert!(
                sounds_alike(ko, en),
                "{ko} = {en}: {:?} vs {:?}",
                korean_skeletons(ko),
                english_skeletons(en)
            );
        }
    }

    #[test]
    fn names_are_heard_in_korean_text() {
        let text =
            "인플루엔자 의심환자가 늘었다. 남양주에서 진접선이 개통했다. 모두 메타를 만났다.";
        assert_eq!(heard_in(text, "Influenza"), Some("인플루엔자"));
        assert_eq!(heard_in(text, "Namyangju"), Some("남양주"));
        assert_eq!(heard_in(text, "Gyeongnam"), None);
        // Too short to tell from 모두.
        assert_eq!(heard_in(text, "Meta"), None);
    }

    #[test]
    fn a_word_of_a_name_is_heard_within_the_korean_name() {
        assert_eq!(
            heard_within("부산국제영화제", "Busan"),
            Some("부산국제영화제")
        );
        assert!(heard_within("남양주시청", "Namyangju").is_some());
        assert!(heard_within("부산국제영화제", "Daegu").is_none());
        assert!(heard_within("남양주시", "Gyeongnam").is_none());
        assert!(heard_within("경기 남양주시", "Gyeongnam").is_none());
        assert!(heard_within("2025 진주남강유등축제", "Guangyue").is_none());
        assert!(heard_within("2025 진주남강유등축제", "Jinju").is_some());
        // Shinhan is s-n, too short to be heard; spelled letter for letter, it is 신한 (a word is a
        // run of Hangul: between middle dots here).
        assert_eq!(heard_within("KB국민·신한·하나은행", "Shinhan"), None);
        assert_eq!(
            spelled_within("KB국민·신한·하나은행", "Shinhan"),
            Some("신한")
        );
        assert_eq!(spelled_within("신한은행", "Shinhan"), Some("신한은행"));
        assert_eq!(
            spelled_within("KB국민·신한·하나은행", "Hana"),
            Some("하나은행")
        );
        assert_eq!(spelled_within("신한", "Shinan"), None);
        assert_eq!(spelled_within("하나", "Han"), None);
        assert_eq!(spelled_within("우리은행", "Woori"), Some("우리은행"));
        // Too short to tell: `Seo` is s alone.
        assert!(heard_within("서울시", "Seo").is_none());
    }

    #[test]
    fn garbled_spellings_are_near_their_names_and_words_are_not() {
        for (ko, en) in [
            ("네이비코퍼", "Nvidia Corp"),
            ("아스턴 벨라울드", "Aston Villa"),
            ("프리드리드 마크", "Freddie Mac"),
            ("브레트", "Brent"),
        ] {
            assert!(
                garbled_distance(ko, en).is_some_and(|d| d > 0),
                "{ko} = {en}: {:?} vs {:?}",
                korean_skeletons(ko),
                english_skeletons(en)
            );
        }
        assert_eq!(garbled_distance("아마존 웹", "Amazon Web"), Some(0));
        for (ko, en) in [
            ("상원", "Senate"),
            ("하니 페이크", "Hansi Flick"),
            ("오일리 웨이츠", "Ollie Watkins"),
            ("교육부", "Education"),
            ("애플리케이션 인크", "Alphabet Inc"),
            ("필요했어요", "Varga"),
        ] {
            assert_eq!(garbled_distance(ko, en), None, "{ko} = {en}");
        }
    }

    #[test]
    fn other_names_do_not() {
        for (ko, en) in [
            ("남양주시", "Gyeongnam City"),
            ("앤디 재시", "Andy Reese"),
            ("크리스티아노 아몬", "Christopher Ammon"),
            ("퀄컴", "Quanta"),
            ("이재용", "James Lee"),
            ("식품의약품안전처", "FDA"),
            ("바르셀로나", "Valencia"),
        ] {
            assert!(!sounds_alike(ko, en), "{ko} = {en}");
        }
    }
}
