//! Faithful Korean and English summaries of a cleaned article: the main job's second half.
//!
//! The 1.5B chat model is capable but careless: given a whole article it copies the opening, loops,
//! and invents people, dates and numbers. So the summary is built in steps that each keep it honest:
//!
//! 1. **Sources.** The encoder ranks the cleaned article's sentences by how central they are; the
//!    opening three and the most central ones, up to a token budget and in article order, are what the
//!    model reads. Spam never reaches it: only the cleaned text is used.
//! 2. **A summary in the article's language**, decoded under [`constrain`] (numbers can only be
//!    copied) by a model that can write only Hangul, Latin letters and symbols ([`writable`]), and
//!    checked sentence by sentence as it streams ([`ground`]: numbers, amounts, percentages,
//!    currencies, dates, names, Korean word stems, repeats, script, length). The first sentence that fails ends the generation; the ones
//!    before it stand. The story's lead opens the summary unless the model's first sentence says it
//!    already. A summary left short (a refusal, or the model stopping early) is completed
//!    with the most central body sentences that fit the limits and say something new; copied text
//!    cannot be unfaithful. A Korean summary at its three sentences with characters to spare has
//!    such sentences joined to its last one ([`pack`]: `…늘었고, …`).
//! 3. **The other language** is a translation of that checked summary, not a second free summary,
//!    one sentence at a time (a small model given a paragraph drifts, loops or talks about the task).
//!    The model first lists the names with their spelling in the other language (an entry is kept
//!    only when the summary contains its source side, and a guessed spelling must sound like the
//!    name: [`romanize`]); the list, the terms of the news it holds ([`terms`]: 폭염특보 = heat
//!    wave advisory) and the quantities in the other language's units go beside each sentence.
//!    Into English, a capitalised name still unlicensed is matched back to a Korean name of the
//!    summary by one more question; into Korean, a name the model garbled (네이비코퍼 for Nvidia
//!    Corp) is put back in the article's Latin letters, as far as the summary stays Korean enough
//!    ([`ground::script_holds`]). A translated sentence the encoder finds far in meaning from
//!    its source is refused ([`SAME_MEANING`]). The translation passes the same checks; a sentence
//!    refused at a word, a number or a letter is asked for again with that spot banned
//!    ([`constrain::Ban`]), twice at most, and so is one that went round in a loop until the token
//!    budget ran out, banned where it began to repeat itself. One refused every time is cut at the
//!    refused phrase ([`cut`]) and stands if it then passes and keeps the meaning. If no sentence
//!    passes, that summary is reported as unavailable, with the reasons: an unchecked sentence is
//!    never printed.

pub mod constrain;
pub mod cut;
pub mod exonyms;
pub mod ground;
pub mod pack;
pub mod prompts;
pub mod romanize;
pub mod terms;

use std::ops::ControlFlow;

use serde::Serialize;

use crate::detect::unit_mean;
use crate::encode::{cosine, Encoder, Prefix};
use crate::error::{Error, Result};
use crate::generate::{GenerateOptions, Generation, Request, StopReason, TextModel};
use crate::segment;
use constrain::{Ban, Class, ClassTokens, CopyFilter};
use ground::{script_share, Grounding, Violation};
use prompts::{Prompt, Prompts};

/// A summary language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Lang {
    Ko,
    En,
}

impl Lang {
    pub fn code(self) -> &'static str {
        match self {
            Lang::Ko => "ko",
            Lang::En => "en",
        }
    }

    fn other(self) -> Lang {
        match self {
            Lang::Ko => Lang::En,
            Lang::En => Lang::Ko,
        }
    }

    /// `ko`, `en` or a comma-separated list of them.
    pub fn parse_list(s: &str) -> Result<Vec<Lang>> {
        let mut out = Vec::new();
        for part in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let lang = match part.to_ascii_lowercase().as_str() {
                "ko" => Lang::Ko,
                "en" => Lang::En,
                other => {
                    return Err(Error::Input(format!(
                        "unknown summary language `{other}`: use ko, en or ko,en"
                    )))
                }
            };
            if !out.contains(&lang) {
                out.push(lang);
            }
        }
        if out.is_empty() {
            return Err(Error::Input(
                "no summary language given: use ko, en or ko,en".into(),
            ));
        }
        Ok(out)
    }
}

/// Length limits of one summary.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_sentences: usize,
    pub max_chars: usize,
}

impl Limits {
    pub fn for_lang(lang: Lang) -> Self {
        match lang {
            Lang::Ko => Limits {
                max_sentences: 3,
                max_chars: 300,
            },
            Lang::En => Limits {
                max_sentences: 3,
                max_chars: 500,
            },
        }
    }
}

/// How a summary was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    /// Written by the model from the article's sentences, every sentence checked.
    Generated,
    /// The model's translation of the other summary, every sentence checked.
    Translated,
    /// The article's own sentences, its lead and the most central others (the model's sentences
    /// all failed their checks).
    Extractive,
    /// The model's checked sentences with the article's own: its lead before them, when they did not
    /// say it, central sentences after them, when they were too few, or joined to the last one, when
    /// characters were left ([`pack`]).
    Mixed,
    /// No sentence passed the checks; nothing is printed.
    Unavailable,
}

/// A sentence the checks refused, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub sentence: String,
    pub reason: String,
}

/// One language's summary.
#[derive(Debug, Clone, Serialize)]
pub struct Summary {
    pub lang: Lang,
    pub text: String,
    pub sentences: Vec<String>,
    pub method: Method,
    pub rejected: Vec<Rejected>,
}

/// A name and its spelling in the other language, kept because the article contains the source side.
#[derive(Debug, Clone, Serialize)]
pub struct GlossaryEntry {
    pub source: String,
    pub target: String,
}

/// Everything the summary step produced.
#[derive(Debug, Clone, Serialize)]
pub struct Summaries {
    pub article_lang: Lang,
    /// In the order asked for.
    pub summaries: Vec<Summary>,
    pub glossary: Vec<GlossaryEntry>,
    /// Byte ranges in the cleaned text of the sentences the model read.
    pub sources: Vec<(usize, usize)>,
    pub prompt_tokens: usize,
    pub generated_tokens: usize,
    pub prefill_s: f64,
    pub decode_s: f64,
}

impl Summaries {
    pub fn get(&self, lang: Lang) -> Option<&Summary> {
        self.summaries.iter().find(|s| s.lang == lang)
    }
}

/// What the caller hears while summaries are made (for streaming to a terminal).
#[derive(Debug)]
pub enum Event<'a> {
    /// A summary in this language begins.
    Begin(Lang),
    /// A checked sentence of it.
    Sentence(Lang, &'a str),
    /// It is finished.
    End(&'a Summary),
}

/// Turns cleaned articles into checked summaries with one chat model and one encoder.
pub struct Summarizer {
    prompts: Prompts,
    tokens: ClassTokens,
    /// How many of the model's tokens of article text the summary prompt may hold.
    pub source_budget: usize,
}

/// Whether a token's text can be part of a Korean or English summary: ASCII, Hangul, Latin letters
/// with accents, and every block of punctuation and symbols Korean and English news use (`∼`, `※`,
/// `▲`, `★`, `㈜`, `㎞`, `㎥`, fullwidth forms), and the bytes of a character split between tokens,
/// which decode to U+FFFD. Left out are other scripts' letters: Han, kana, Cyrillic, Thai, Arabic...
/// (A model barred from a symbol the article uses writes another one in its place: with the CJK
/// compatibility block left out, `㎥당 58㎍` came out as `58℃당 58℃`.)
pub fn writable(text: &str) -> bool {
    text.chars().all(|c| {
        c.is_ascii()
            || ground::is_hangul(c)
            || matches!(c,
                '\u{00A0}'..='\u{036F}' // Latin-1, Latin Extended-A and B, modifiers, combining marks
                | '\u{1100}'..='\u{11FF}' // Hangul jamo
                | '\u{1E00}'..='\u{1EFF}' // Latin Extended Additional
                | '\u{2000}'..='\u{2BFF}' // punctuation, currency, letterlike, arrows, maths, shapes, symbols
                | '\u{3000}'..='\u{303F}' // CJK punctuation (「」, 〈〉)
                | '\u{3130}'..='\u{318F}' // Hangul compatibility jamo
                | '\u{3200}'..='\u{33FF}' // enclosed letters (㈜) and units (㎞, ㎥)
                | '\u{A960}'..='\u{A97F}' // Hangul jamo extended-A
                | '\u{D7B0}'..='\u{D7FF}' // Hangul jamo extended-B
                | '\u{FF00}'..='\u{FFEF}' // fullwidth forms
                | '\u{FFFD}')
    })
}

/// Share of Hangul among an article's letters above which it is read as Korean.
const KOREAN_ARTICLE: f64 = 0.5;

impl Summarizer {
    /// A summarizer writing with `model`, which from then on writes only what a Korean or English
    /// summary can hold ([`writable`]): no Han, kana, Cyrillic or other script the model knows,
    /// and each decoding step computes a third fewer logits.
    pub fn new(model: &mut TextModel, prompts: Prompts) -> Result<Self> {
        // One pass over the vocabulary serves both: the copy constraint's token classes, and the
        // tokens the model may write.
        let tokens = ClassTokens::new(model.tokenizer());
        let kept = model.keep_token_ids(tokens.writing(writable))?;
        if std::env::var_os("SIFT_DEBUG").is_some() {
            eprintln!("sift: [debug] the model may write {kept:?} of its tokens");
        }
        Ok(Self {
            prompts,
            tokens,
            source_budget: 480,
        })
    }

    /// Summarizes `clean` (an article with its spam removed) in each of `langs`.
    pub fn summarize(
        &self,
        model: &mut TextModel,
        encoder: &Encoder,
        clean: &str,
        langs: &[Lang],
        on_event: &mut dyn FnMut(Event),
    ) -> Result<Summaries> {
        let article_lang = article_language(clean)?;
        // What ran before this document must not change its summaries.
        model.forget();
        // Pieces, not sentences: a line of thousands of characters with no sentence end would otherwise
        // be one source far over the prompt's budget.
        let spans: Vec<(usize, usize)> = segment::pieces(clean, crate::detect::MAX_PIECE_CHARS)
            .iter()
            .map(|s| (s.start, s.end))
            .collect();
        if spans.is_empty() {
            return Err(Error::Input(
                "the article has no genuine text to summarize".into(),
            ));
        }
        let texts: Vec<&str> = spans.iter().map(|&(s, e)| &clean[s..e]).collect();
        let vectors = encoder.embed(&texts, Prefix::Passage)?;
        let refs: Vec<&[f32]> = vectors.iter().map(Vec::as_slice).collect();
        let centre = unit_mean(&refs, encoder.dim());
        let centrality: Vec<f32> = vectors.iter().map(|v| cosine(v, &centre)).collect();
        // What a summary may quote: each sentence without the wire dateline that opens a story.
        let plain: Vec<&str> = texts.iter().map(|t| strip_dateline(t)).collect();
        let sources = self.pick_sources(model, &texts, &centrality)?;
        let source_texts: Vec<&str> = sources.iter().map(|&i| plain[i]).collect();
        let grounding = Grounding::new(clean);
        let mut run = Run::default();

        // The summary in the article's own language comes first: the other one translates it.
        let source_lang = article_lang;
        let show_source = langs.contains(&source_lang);
        let prompt = match source_lang {
            Lang::Ko => &self.prompts.summarize_ko,
            Lang::En => &self.prompts.summarize_en,
        };
        if show_source {
            on_event(Event::Begin(source_lang));
        }
        let mut gate = Gate::new(source_lang, &grounding, &plain);
        // The story's lead (its first body sentence) opens the summary when the model's first
        // sentence does not already say it, and it passes the checks and fits: news puts what matters
        // first, and the model, left to choose, sometimes opened with a quote from the end.
        gate.lead = (0..texts.len())
            .find(|&i| is_body(texts[i]))
            .map(|i| plain[i].trim())
            .filter(|lead| {
                lead.chars().count() <= Limits::for_lang(source_lang).max_chars
                    && grounding.check(lead, source_lang, true, &[]).is_ok()
            });
        // Each sentence is shown once the next one is admitted: the last may yet have article
        // sentences joined to it (see `pack`).
        let (mut held, mut shown) = (None::<String>, 0);
        self.generate(
            model,
            prompt,
            &source_texts.join("\n"),
            &grounding,
            &mut gate,
            &mut run,
            &mut |s| {
                if show_source {
                    if let Some(previous) = held.replace(s.to_string()) {
                        on_event(Event::Sentence(source_lang, &previous));
                        shown += 1;
                    }
                }
            },
        )?;
        let mut first = gate.finish(Method::Generated);
        if first.sentences.len() < Limits::for_lang(source_lang).max_sentences {
            // A refusal cut the summary short, or the model stopped early: the article's own central
            // sentences complete it, as far as the length limit allows.
            complete(&mut first, &plain, &centrality, &grounding);
        }
        // The translation is of the sentences as the model wrote them or the article completed them;
        // what is joined on is the Korean summary's alone (a translation of a long sentence keeps
        // its first half).
        let output = match source_lang {
            Lang::Ko => pack::packed(&first, &plain, &centrality, &grounding),
            Lang::En => first.clone(),
        };
        if show_source {
            for s in &output.sentences[shown..] {
                on_event(Event::Sentence(source_lang, s));
            }
            on_event(Event::End(&output));
        }

        let mut glossary = Vec::new();
        let mut second = None;
        let target = source_lang.other();
        if langs.contains(&target) {
            on_event(Event::Begin(target));
            let summary = if first.sentences.is_empty() {
                unavailable(target, Vec::new())
            } else {
                // A Korean summary of an English article may add what the English one had no room
                // for: central article sentences it lacks, translated beside it (see `pack`).
                let extras: Vec<String> = match target {
                    Lang::Ko => pack::uncovered(
                        &first.sentences,
                        &plain,
                        &centrality,
                        &grounding,
                        EXTRA_CHARS,
                    )
                    .into_iter()
                    .map(|i| plain[i].trim().to_string())
                    .collect(),
                    Lang::En => Vec::new(),
                };
                let (summary, names) =
                    self.translate(model, encoder, &first, &extras, &grounding, &mut run)?;
                glossary = names;
                for s in &summary.sentences {
                    on_event(Event::Sentence(target, s));
                }
                summary
            };
            on_event(Event::End(&summary));
            second = Some(summary);
        }

        let mut summaries = Vec::new();
        for &lang in langs {
            if lang == source_lang {
                summaries.push(output.clone());
            } else if let Some(s) = &second {
                summaries.push(s.clone());
            }
        }
        Ok(Summaries {
            article_lang,
            summaries,
            glossary,
            sources: sources.iter().map(|&i| spans[i]).collect(),
            prompt_tokens: run.prompt_tokens,
            generated_tokens: run.generated_tokens,
            prefill_s: run.prefill_s,
            decode_s: run.decode_s,
        })
    }

    /// The opening three sentences of the body and the most central others, within the token budget,
    /// in article order (indices into `texts`). Headlines and bylines (lines that do not end like a
    /// sentence) are left out when the article has body sentences: the model copies them verbatim.
    fn pick_sources(
        &self,
        model: &TextModel,
        texts: &[&str],
        centrality: &[f32],
    ) -> Result<Vec<usize>> {
        let body: Vec<usize> = (0..texts.len()).filter(|&i| is_body(texts[i])).collect();
        let mut order = if body.is_empty() {
            (0..texts.len()).collect()
        } else {
            body
        };
        // The lead (the first three sentences of the body) is where news puts what matters.
        let lead_end = order.get(2).or(order.last()).copied().unwrap_or(0);
        order.sort_by(|&a, &b| {
            let lead = |i: usize| i <= lead_end;
            lead(b)
                .cmp(&lead(a))
                .then(centrality[b].total_cmp(&centrality[a]))
        });
        let mut chosen = Vec::new();
        let mut used = 0;
        for i in order {
            let n = model.encode(texts[i])?.len() + 1;
            if used + n > self.source_budget && !chosen.is_empty() {
                continue;
            }
            used += n;
            chosen.push(i);
        }
        chosen.sort_unstable();
        Ok(chosen)
    }

    /// Runs one step: renders `prompt` with `values`, decodes with the runs of `classes` copied from
    /// the article and `bans` kept, and hands each piece of text to `on_text`.
    #[allow(clippy::too_many_arguments)]
    fn step(
        &self,
        model: &mut TextModel,
        prompt: &Prompt,
        values: &[(&str, &str)],
        grounding: &Grounding,
        classes: &[Class],
        bans: &[Ban],
        run: &mut Run,
        on_text: &mut dyn FnMut(&str) -> ControlFlow<()>,
    ) -> Result<Generation> {
        let tokens = model.chat_prompt(&prompt.render(values))?;
        let mut filter = CopyFilter::new(grounding, &self.tokens, classes).banning(bans);
        let opts = step_options(model, prompt, &tokens)?;
        let generation = model.generate_filtered(&tokens, &opts, Some(&mut filter), on_text)?;
        report(tokens.len(), &generation, run);
        Ok(generation)
    }

    /// [`Self::step`] for several renderings of one prompt (`values`, no bans), decoded together
    /// ([`TextModel::generate_batch`]); each answer ends with its first sentence.
    fn step_batch(
        &self,
        model: &mut TextModel,
        prompt: &Prompt,
        values: &[Vec<(&str, &str)>],
        grounding: &Grounding,
        classes: &[Class],
        run: &mut Run,
    ) -> Result<Vec<Generation>> {
        let prompts = values
            .iter()
            .map(|v| model.chat_prompt(&prompt.render(v)))
            .collect::<Result<Vec<_>>>()?;
        let mut filters: Vec<CopyFilter> = values
            .iter()
            .map(|_| CopyFilter::new(grounding, &self.tokens, classes))
            .collect();
        let mut texts = vec![String::new(); values.len()];
        let mut callbacks: Vec<_> = texts
            .iter_mut()
            .map(|text| move |piece: &str| first_sentence(text, piece))
            .collect();
        let lengths: Vec<usize> = prompts.iter().map(Vec::len).collect();
        let opts = match prompts.first() {
            Some(first) => step_options(model, prompt, first)?,
            None => return Ok(Vec::new()),
        };
        let requests = prompts
            .into_iter()
            .zip(&mut filters)
            .zip(&mut callbacks)
            .map(|((prompt, filter), on_text)| Request {
                prompt,
                filter: Some(filter),
                on_text,
            })
            .collect();
        let generations = model.generate_batch(requests, &opts)?;
        for (length, generation) in lengths.into_iter().zip(&generations) {
            report(length, generation, run);
        }
        Ok(generations)
    }

    /// The summary in the article's language, each sentence admitted by `gate` as it streams.
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &self,
        model: &mut TextModel,
        prompt: &Prompt,
        article: &str,
        grounding: &Grounding,
        gate: &mut Gate,
        run: &mut Run,
        on_sentence: &mut dyn FnMut(&str),
    ) -> Result<()> {
        // Korean copies the article's Latin-script names rather than spelling its own. (Constraining Korean
        // stems the same way was tried: the model, kept from a mis-copy, wrote a different claim.)
        let classes: &[Class] = if gate.lang == Lang::Ko {
            &[Class::Digits, Class::Latin]
        } else {
            &[Class::Digits, Class::Hangul]
        };
        let generation = self.step(
            model,
            prompt,
            &[("article", article)],
            grounding,
            classes,
            &[],
            run,
            &mut |piece| gate.push(piece, on_sentence),
        )?;
        if generation.stop != StopReason::Callback {
            gate.close(on_sentence);
        }
        Ok(())
    }

    /// The other language's summary: a translation of the checked one. English names the article does
    /// not contain are matched back to the Korean names they translate; a match counts only when the
    /// article contains that Korean name. `extras` (article sentences the summary lacks) are
    /// translated too and added to a Korean summary that has room ([`pack::added`]).
    fn translate(
        &self,
        model: &mut TextModel,
        encoder: &Encoder,
        first: &Summary,
        extras: &[String],
        grounding: &Grounding,
        run: &mut Run,
    ) -> Result<(Summary, Vec<GlossaryEntry>)> {
        if first.lang == Lang::En {
            return self.translate_to_korean(model, encoder, first, extras, grounding, run);
        }
        let prompt = &self.prompts.translate_ko_en;
        // Names first: the model spells them better when it has listed them (kept only when the
        // summary contains the Korean side).
        let lists = self.name_list(
            model,
            &self.prompts.glossary_ko_en,
            &[("text", &first.text)],
            grounding,
            run,
        )?;
        // The name list's prompt opens as the one matching names back does (after the translations).
        model.park()?;
        let mut glossary: Vec<GlossaryEntry> = parse_glossary(&lists, &first.text)
            .into_iter()
            .map(|e| {
                if spelling_holds(model, &e) {
                    e
                } else {
                    // A guessed spelling of a rare name: the name as Korean spells it instead.
                    GlossaryEntry {
                        target: romanize::display(&e.source),
                        source: e.source,
                    }
                }
            })
            .collect();
        glossary.extend(mended_entries(&lists, &first.text, &glossary));
        // A famous name given to another body (금융위원회 = Federal Reserve Board) is no spelling.
        glossary.retain(|e| !exonyms::misnamed(&e.source, &e.target));
        // A Korean name's Latin letters are part of its English one (`SK하이닉스` = SK Hynix); one
        // that loses them is another name (`J리그` = La Liga, not J.League).
        glossary.retain(|e| latin_kept(&e.source, &e.target));
        // Places and bodies whose names do not sound alike (독일 = Germany) or are too short to tell
        // by their sound (서울 = Seoul): the table's, in place of the model's (which listed 서울 as
        // `Seoul Metropolitan Government` in a story about the weather).
        let known = exonyms::in_korean(&first.text);
        for e in &known {
            glossary.retain(|g| g.source != e.korean);
            glossary.push(GlossaryEntry {
                source: e.korean.to_string(),
                target: e.english[0].to_string(),
            });
        }
        // Terms of the beat the model would translate on its own, wrongly (폭염특보 = heat wave
        // advisory, not `epidemic warning`), in place of its gloss of a phrase that holds one
        // (`전세사기 일당 = real estate agency`).
        let terms = terms::in_korean(&first.text);
        glossary.retain(|e| !terms::misglossed(&e.source, &e.target, &terms));
        let terms: Vec<(String, String)> = terms
            .into_iter()
            .filter(|(korean, _)| !glossary.iter().any(|g| g.source.contains(korean)))
            .map(|(korean, english)| (korean.to_string(), english.to_string()))
            .collect();
        // Quantities too: the model copies 42,000 far more reliably than it multiplies 4만2천.
        let names: Vec<(String, String)> = glossary
            .iter()
            .map(|e| (e.source.clone(), e.target.clone()))
            .chain(ground::english_quantities(&first.text))
            .collect();
        // A sentence's own spans of time, listed beside it alone: listed beside every sentence,
        // the seed's `넉 달 = four months` went into all three translations.
        let listed = |sentence: &str| {
            let names: Vec<(String, String)> = names
                .iter()
                .cloned()
                .chain(ground::english_spans(sentence))
                .collect();
            listing_with_terms(&names, &terms, &terms::in_korean(sentence))
        };
        // English writes no Hangul: a Korean phrase left as it stands sinks the sentence.
        let classes = [Class::Digits, Class::Hangul];
        let ask = |sentence: &str, bans: &[Ban], run: &mut Run, model: &mut TextModel| {
            self.translate_sentence(
                model,
                prompt,
                &listed(sentence),
                sentence,
                grounding,
                &classes,
                bans,
                run,
                None,
            )
        };
        let answers = self
            .translate_sentences(
                model,
                encoder,
                prompt,
                &listed,
                &first.sentences,
                grounding,
                &classes,
                run,
            )?
            .into_iter()
            .filter_map(|(sentence, answer)| answer.map(|a| (sentence, a)))
            .collect();
        let (mut answers, refused) = same_meaning(encoder, answers)?;
        let translation = joined(&answers);
        let mut licensed = grounding.clone();
        for e in &glossary {
            licensed.allow_names(&e.target);
        }
        for name in known.iter().flat_map(|e| &e.english) {
            licensed.allow_names(name);
        }
        self.match_names(
            model,
            first,
            &translation,
            grounding,
            &mut licensed,
            &mut glossary,
            run,
        )?;
        // Checked only now, with the names matched back: a sentence refused even so is asked again,
        // and the new answer's names are matched back in turn (asked again, the model renamed
        // 식품의약품안전처 `Drug Safety Commission of Korea`).
        for (sentence, answer) in &mut answers {
            let sentence: &str = sentence;
            self.mend(
                model,
                encoder,
                &mut licensed,
                Lang::En,
                sentence,
                answer,
                run,
                |bans, run, model| ask(sentence, bans, run, model),
                |model, text, licensed, run| {
                    self.match_names(model, first, text, grounding, licensed, &mut glossary, run)
                },
            )?;
        }
        // A body the summary names may only stand in the translation of a sentence that names it.
        let mut refused = refused;
        answers.retain(
            |(sentence, answer)| match exonyms::body_not_in(sentence, &answer.text) {
                Some(name) => {
                    refused.push(Rejected {
                        sentence: answer.text.clone(),
                        reason: format!("name {name} is not in the sentence it translates"),
                    });
                    false
                }
                None => true,
            },
        );
        let mut gate = Gate::for_translation(Lang::En, &licensed);
        gate.rejected = refused;
        let _ = gate.push_whole(&joined(&answers), &mut |_| {});
        Ok((gate.finish_translation(), glossary))
    }

    /// The Korean summary of an English article: its checked English summary translated one sentence
    /// at a time ([`Self::translate_sentence`]), with the names the model spells in Korean and the
    /// quantities in Korean units given beside each sentence. A Korean spelling is listed only when it
    /// sounds like the English name (see [`romanize`]); Latin-script words can only be copied from
    /// the article. Each of `extras` (English article sentences the summary lacks) is translated
    /// in the same batch, with the quantities it holds listed too, and kept when its first answer
    /// passes the checks and keeps the meaning (it is not asked for again); the kept ones are added
    /// to the translation as far as its limits allow ([`pack::added`]).
    fn translate_to_korean(
        &self,
        model: &mut TextModel,
        encoder: &Encoder,
        first: &Summary,
        extras: &[String],
        grounding: &Grounding,
        run: &mut Run,
    ) -> Result<(Summary, Vec<GlossaryEntry>)> {
        let lists = self.name_list(
            model,
            &self.prompts.glossary_en_ko,
            &[("text", &first.text)],
            grounding,
            run,
        )?;
        // The model knows how famous names are written in English, not how Korean writes them: every
        // Korean spelling must sound like its English name (Thailand = 태국 does not, and the
        // translation copies `Thailand`; 해바라드 for Hawaiian does not either).
        // The refused spellings are kept aside: the model may write them all the same.
        let (mut glossary, refused): (Vec<GlossaryEntry>, Vec<GlossaryEntry>) =
            parse_korean_names(&lists, &first.text)
                .into_iter()
                .partition(korean_spelling_holds);
        let guesses: Vec<Guess> = refused
            .into_iter()
            .map(|e| Guess {
                by_last_word: e
                    .target
                    .split_whitespace()
                    .next_back()
                    .is_some_and(|last| rare_words(model, &e.target).contains(&last)),
                korean: e.source,
                name: e.target,
            })
            .collect();
        // Places and bodies whose Korean name is not their sound (Germany = 독일, Fed = 연준): the
        // table's, in place of the model's.
        for (name, e) in exonyms::in_english(&first.text) {
            glossary.retain(|g| g.target != name);
            glossary.push(GlossaryEntry {
                source: e.korean.to_string(),
                target: name.to_string(),
            });
        }
        // A name with no Korean spelling that sounds like it is listed as the article writes it: the
        // model copies it rather than guessing one (`쿼리웨이드 하비드` for Hawaiian Holdings), and a
        // name in Latin letters is still the article's name. Its words that a spelling or a term
        // gives in Hangul are listed in Hangul ([`with_korean_parts`]).
        let unspelled = unspelled_names(&lists, &first.text, &glossary);
        // Terms of the beat the model would translate on its own, wrongly (rice = 쌀, not 빵),
        // unless a name says them; the extras' too (each sentence is listed only those it holds).
        let read = std::iter::once(first.text.clone())
            .chain(extras.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ");
        let terms: Vec<(String, String)> = terms::in_english(&read)
            .into_iter()
            .filter(|(english, _)| {
                let english = english.to_lowercase();
                !glossary
                    .iter()
                    .any(|g| g.target.to_lowercase().contains(&english))
            })
            .map(|(english, korean)| (english.to_string(), korean.to_string()))
            .collect();
        let listed_names: Vec<(String, String)> = glossary
            .iter()
            .map(|e| (e.target.clone(), e.source.clone()))
            .collect();
        let spelled: Vec<(String, String)> = listed_names.iter().chain(&terms).cloned().collect();
        let names: Vec<(String, String)> = listed_names
            .into_iter()
            .chain(
                unspelled
                    .into_iter()
                    .map(|name| (name.clone(), with_korean_parts(&name, &spelled))),
            )
            // Quantities, weekdays and months, and spans of time, as Korean writes them.
            .chain(ground::korean_renderings(&first.text))
            .chain(ground::korean_dates(&first.text))
            .chain(ground::korean_spans(&first.text))
            .collect();
        // An extra's own quantities and dates follow the summary's, so its prompt opens as theirs do.
        let mut extra_names = names.clone();
        let extra_text = extras.join(" ");
        for pair in ground::korean_renderings(&extra_text)
            .into_iter()
            .chain(ground::korean_dates(&extra_text))
            .chain(ground::korean_spans(&extra_text))
        {
            if !extra_names.contains(&pair) {
                extra_names.push(pair);
            }
        }
        let listed = |sentence: &str| {
            let names = match extras.iter().any(|e| e == sentence) {
                true => &extra_names,
                false => &names,
            };
            listing_with_terms(names, &terms, &terms::in_english(sentence))
        };
        let prompt = &self.prompts.translate_en_ko;
        let classes = [Class::Digits, Class::Latin];
        let hangul_only = grounding.without_latin_runs();
        let sentences: Vec<String> = first.sentences.iter().chain(extras).cloned().collect();
        let mut firsts = self.translate_sentences(
            model, encoder, prompt, &listed, &sentences, grounding, &classes, run,
        )?;
        let extra_answers = firsts.split_off(first.sentences.len());
        let mut answers = Vec::new();
        // The answers that pass so far: the summary as a whole must stay Korean enough.
        let mut earlier: Vec<String> = Vec::new();
        // Nothing widens what an English article licenses: `mend` gets one copy it leaves as it is.
        let mut fixed = grounding.clone();
        for (sentence, mut answer) in firsts {
            let ask =
                |grounding: &Grounding, bans: &[Ban], run: &mut Run, model: &mut TextModel| {
                    self.translate_sentence(
                        model,
                        prompt,
                        &listed(sentence),
                        sentence,
                        grounding,
                        &classes,
                        bans,
                        run,
                        None,
                    )
                };
            // Names kept in Latin letters (`Federal Reserve는`) can sink a sentence, or the summary
            // so far, under the Korean script share ([`ground::script_holds`]: one sentence may
            // hold less than the whole): then it is asked again with no Latin letters allowed, so
            // the model writes them in Hangul (연준), and the second answer stands if it has a
            // sentence. (`CDC는 ... MMR 백신을 ...`, at 0.78 alone, was asked again and came back
            // as `미국의 코로나 백신 센터는 ...`.)
            let mut used = grounding;
            if answer
                .as_ref()
                .is_some_and(|a| ground::script_holds(&a.text, &earlier, Lang::Ko).is_err())
            {
                if let Some(again) = ask(&hangul_only, &[], run, model)? {
                    answer = Some(again);
                    used = &hangul_only;
                }
            }
            if let Some(answer) = &mut answer {
                self.mend(
                    model,
                    encoder,
                    &mut fixed,
                    Lang::Ko,
                    sentence,
                    answer,
                    run,
                    |bans, run, model| ask(used, bans, run, model),
                    |_, _, _, _| Ok(()),
                )?;
            }
            // Counted only if it passes as the gate will judge it (the oil article's first
            // sentence, refused for an amount, had made room for a second at 72% Hangul).
            if let Some(answer) = &answer {
                if fixed.check(&answer.text, Lang::Ko, false, &earlier).is_ok() {
                    earlier.push(answer.text.clone());
                }
            }
            answers.extend(answer.map(|a| (sentence, a)));
        }
        let (mut answers, refused) = same_meaning(encoder, answers)?;
        let mut gate = Gate::for_translation(Lang::Ko, grounding);
        gate.rejected = refused;
        // Names the model garbled go back to the article's spelling where the gate would still
        // admit the sentence (the summary stays Korean enough and within its length).
        for (sentence, answer) in &mut answers {
            answer.restore_names(sentence, &glossary, &guesses, |text| gate.would_admit(text));
            let _ = gate.push_whole(&answer.text, &mut |_| {});
        }
        let summary = gate.finish_translation();
        // The extras: first answers only, checked after the summary, then added where they fit.
        let passing: Vec<Translated> = extra_answers
            .into_iter()
            .filter_map(|(sentence, answer)| answer.map(|a| (sentence, a)))
            .filter(|(_, a)| {
                grounding
                    .check(&a.text, Lang::Ko, false, &summary.sentences)
                    .is_ok()
            })
            .collect();
        let (mut kept, _) = same_meaning(encoder, passing)?;
        for (sentence, answer) in &mut kept {
            answer.restore_names(sentence, &glossary, &guesses, |text| {
                ground::script_holds(text, &summary.sentences, Lang::Ko).is_ok()
            });
        }
        let more: Vec<String> = kept.into_iter().map(|(_, a)| a.text).collect();
        let summary = pack::added(&summary, &more, |sentence, before| {
            grounding.check(sentence, Lang::Ko, false, before).is_ok()
        });
        Ok((summary, glossary))
    }
    /// Matches the English names of `translation` that `licensed` does not license yet back to the
    /// Korean names of the summary `first` they translate, licensing those that hold and listing
    /// them in `glossary`.
    #[allow(clippy::too_many_arguments)]
    fn match_names(
        &self,
        model: &mut TextModel,
        first: &Summary,
        translation: &str,
        grounding: &Grounding,
        licensed: &mut Grounding,
        glossary: &mut Vec<GlossaryEntry>,
        run: &mut Run,
    ) -> Result<()> {
        // A name that sounds like a Korean word of the summary is that word's spelling
        // (인플루엔자 = Influenza), as is a name of several words whose rare words are heard in one
        // (신한 = Shinhan Bank); only the rest go to the model to be matched back.
        let mut names = licensed.ungrounded_names(translation);
        names.retain(|name| {
            match romanize::heard_in(&first.text, name)
                .or_else(|| heard_name(model, &first.text, name))
            {
                Some(korean) => {
                    licensed.allow_names(name);
                    glossary.push(GlossaryEntry {
                        source: korean.to_string(),
                        target: name.clone(),
                    });
                    false
                }
                None => true,
            }
        });
        let names = joined_names(names, translation);
        if !names.is_empty() {
            let answer = self.name_list(
                model,
                &self.prompts.align_names,
                &[("text", &first.text), ("names", &names.join("\n"))],
                grounding,
                run,
            )?;
            for e in parse_alignment(&answer, &names, &first.text) {
                if !spelling_holds(model, &e) || exonyms::misnamed(&e.source, &e.target) {
                    continue;
                }
                licensed.allow_names(&e.target);
                glossary.push(e);
            }
        }
        Ok(())
    }

    /// Asks again, up to [`RETRIES`] times, for a translation the checks refuse at a word, a number
    /// or a letter, with each refused spot banned ([`Ban`]); an answer that then passes the checks
    /// of `licensed` (and, in English, names only the bodies its Korean `sentence` names) and keeps
    /// the meaning of `sentence` replaces `answer`. Failing that, the first answer that passes with
    /// its refused phrases cut out ([`without_refused`]) and keeps the meaning; otherwise `answer`
    /// stays, for the gate to refuse. An amount whose scale the model got wrong (`300 billion` for
    /// 300억) is written as the article's first ([`Answer::mend_amounts`]), and the answer checked
    /// so. Each answer asked for again goes to `widen` first, which may license more of it in
    /// `licensed`.
    #[allow(clippy::too_many_arguments)]
    fn mend(
        &self,
        model: &mut TextModel,
        encoder: &Encoder,
        licensed: &mut Grounding,
        lang: Lang,
        sentence: &str,
        answer: &mut Answer,
        run: &mut Run,
        mut ask: impl FnMut(&[Ban], &mut Run, &mut TextModel) -> Result<Option<Answer>>,
        mut widen: impl FnMut(&mut TextModel, &str, &mut Grounding, &mut Run) -> Result<()>,
    ) -> Result<()> {
        let mut bans = Vec::new();
        let mut current = answer.clone();
        let mut attempts = Vec::new();
        for attempt in 0..=RETRIES {
            if attempt > 0 {
                widen(model, &current.text, licensed, run)?;
            }
            // Checked with its amounts mended; banned where the model's own text went wrong.
            let mut mended = current.clone();
            mended.mend_amounts(licensed, lang);
            let refusal = match checked(licensed, lang, sentence, &mended.text) {
                Ok(()) if attempt == 0 => {
                    *answer = mended;
                    return Ok(());
                }
                Ok(()) => {
                    let (kept, _) = same_meaning(encoder, vec![(sentence, mended)])?;
                    if let Some((_, mended)) = kept.into_iter().next() {
                        *answer = mended;
                        return Ok(());
                    }
                    // Passed, but far in meaning: the refused answers may still be cut.
                    break;
                }
                Err(v) => v,
            };
            attempts.push(mended);
            let Some(at) = refusal.at(&current.text).filter(|_| attempt < RETRIES) else {
                break;
            };
            bans.push(
                Ban::new(&current.raw, current.offset + at)
                    .with_kind(licensed.unnamed_like(&refusal)),
            );
            let Some(again) = ask(&bans, run, model)? else {
                break;
            };
            if std::env::var_os("SIFT_DEBUG").is_some() {
                eprintln!("sift: [debug] asked again ({refusal}): {:?}", again.text);
            }
            current = again;
        }
        // Refused every time: the first answer that passes with its refused phrases cut out, and
        // keeps the meaning of `sentence`.
        for attempt in attempts {
            let Some(cut) = without_refused(licensed, lang, sentence, attempt) else {
                continue;
            };
            let (kept, _) = same_meaning(encoder, vec![(sentence, cut)])?;
            if let Some((_, cut)) = kept.into_iter().next() {
                *answer = cut;
                break;
            }
        }
        Ok(())
    }

    /// `sentence` translated on its own with `prompt` (`{glossary}` = `listed`, `{text}` = the
    /// sentence), runs of `classes` copied from the article and `bans` kept. Only the first sentence
    /// of the answer is kept: given a paragraph, or left to go on, the small model drifts, repeats
    /// itself or talks about the task. An answer cut off by the token budget went round in a loop: it
    /// is asked again, banned from where the loop began, up to [`RETRIES`] times, and gives nothing
    /// if it still runs out. `first` is the first answer when it was already decoded (in a batch).
    #[allow(clippy::too_many_arguments)]
    fn translate_sentence(
        &self,
        model: &mut TextModel,
        prompt: &Prompt,
        listed: &str,
        sentence: &str,
        grounding: &Grounding,
        classes: &[Class],
        bans: &[Ban],
        run: &mut Run,
        mut first: Option<Generation>,
    ) -> Result<Option<Answer>> {
        let mut bans = bans.to_vec();
        let given = bans.len();
        let generation = loop {
            let generation = match first.take() {
                Some(generation) => generation,
                None => {
                    let mut text = String::new();
                    self.step(
                        model,
                        prompt,
                        &[("glossary", listed), ("text", sentence)],
                        grounding,
                        classes,
                        &bans,
                        run,
                        &mut |piece| first_sentence(&mut text, piece),
                    )?
                }
            };
            if generation.stop != StopReason::MaxTokens {
                break generation;
            }
            // The budget ran out before the sentence ended: the model went round in a loop. Asked
            // again, it may not go back where the loop began.
            match loop_start(&generation.text) {
                Some(at) if bans.len() < given + RETRIES => {
                    if std::env::var_os("SIFT_DEBUG").is_some() {
                        eprintln!(
                            "sift: [debug] asked again (a loop from {:?})",
                            generation.text[at..].chars().take(20).collect::<String>()
                        );
                    }
                    bans.push(Ban::new(&generation.text, at));
                }
                _ => return Ok(None),
            }
        };
        let raw = generation.text;
        let skipped = raw.len() - raw.trim_start().len();
        let line = raw[skipped..].split('\n').next().unwrap_or_default();
        Ok(segment::sentences(line).first().map(|first| {
            let sentence = &line[first.start..first.end];
            let lead = sentence.len() - sentence.trim_start().len();
            Answer {
                text: sentence.trim().to_string(),
                offset: skipped + first.start + lead,
                raw: raw.clone(),
            }
        }))
    }

    /// The first answers for every sentence of `sentences`, decoded together, then each made into
    /// an answer by [`Self::translate_sentence`] (which asks again, alone, for one that looped), and
    /// those far in meaning from their sentence asked for once more ([`Self::reask_far`]). `listed`
    /// gives each sentence its list of names, quantities and terms.
    #[allow(clippy::too_many_arguments)]
    fn translate_sentences<'s>(
        &self,
        model: &mut TextModel,
        encoder: &Encoder,
        prompt: &Prompt,
        listed: &dyn Fn(&str) -> String,
        sentences: &'s [String],
        grounding: &Grounding,
        classes: &[Class],
        run: &mut Run,
    ) -> Result<Vec<(&'s str, Option<Answer>)>> {
        let listings: Vec<String> = sentences.iter().map(|s| listed(s)).collect();
        let values: Vec<Vec<(&str, &str)>> = sentences
            .iter()
            .zip(&listings)
            .map(|(s, l)| vec![("glossary", l.as_str()), ("text", s.as_str())])
            .collect();
        let firsts = self.step_batch(model, prompt, &values, grounding, classes, run)?;
        let answers = sentences
            .iter()
            .zip(&listings)
            .zip(firsts)
            .map(|((sentence, listing), first)| {
                let answer = self.translate_sentence(
                    model,
                    prompt,
                    listing,
                    sentence,
                    grounding,
                    classes,
                    &[],
                    run,
                    Some(first),
                )?;
                Ok((sentence.as_str(), answer))
            })
            .collect::<Result<Vec<_>>>()?;
        self.reask_far(
            model,
            encoder,
            answers,
            run,
            |sentence, bans, run, model| {
                self.translate_sentence(
                    model,
                    prompt,
                    &listed(sentence),
                    sentence,
                    grounding,
                    classes,
                    bans,
                    run,
                    None,
                )
            },
        )
    }

    /// Each answer whose meaning is far from its sentence ([`SAME_MEANING`]) asked for once more
    /// with `ask`, banned from opening as it did; the new answer stands when it is nearer in
    /// meaning. The small model sometimes answers a long sentence with a heading (`세부 정보:`,
    /// "details:", for a sentence on a $48 billion bill), and one refused for its meaning was
    /// otherwise dropped, often the summary's first and richest.
    fn reask_far<'s>(
        &self,
        model: &mut TextModel,
        encoder: &Encoder,
        answers: Vec<(&'s str, Option<Answer>)>,
        run: &mut Run,
        mut ask: impl FnMut(&str, &[Ban], &mut Run, &mut TextModel) -> Result<Option<Answer>>,
    ) -> Result<Vec<(&'s str, Option<Answer>)>> {
        let given: Vec<(&str, &str)> = answers
            .iter()
            .filter_map(|(s, a)| a.as_ref().map(|a| (*s, a.text.as_str())))
            .collect();
        let mut near = similarities(encoder, given)?.into_iter();
        let mut out = Vec::with_capacity(answers.len());
        for (sentence, answer) in answers {
            let Some(answer) = answer else {
                out.push((sentence, None));
                continue;
            };
            let similarity = near.next().unwrap_or(1.0);
            if similarity >= SAME_MEANING {
                out.push((sentence, Some(answer)));
                continue;
            }
            let ban = Ban::new(&answer.raw, answer.offset);
            let again = ask(sentence, &[ban], run, model)?;
            let better = match again {
                Some(again) => {
                    let nearer = similarities(encoder, vec![(sentence, again.text.as_str())])?[0];
                    if std::env::var_os("SIFT_DEBUG").is_some() {
                        eprintln!(
                            "sift: [debug] asked again (similarity {similarity:.3}), {nearer:.3}: {:?}",
                            again.text
                        );
                    }
                    (nearer > similarity).then_some(again)
                }
                None => None,
            };
            out.push((sentence, Some(better.unwrap_or(answer))));
        }
        Ok(out)
    }

    /// The names the model lists (`prompt` rendered with `values`, one `a = b` per line).
    fn name_list(
        &self,
        model: &mut TextModel,
        prompt: &Prompt,
        values: &[(&str, &str)],
        grounding: &Grounding,
        run: &mut Run,
    ) -> Result<String> {
        let answer = self.step(
            model,
            prompt,
            values,
            grounding,
            &[Class::Digits],
            &[],
            run,
            &mut |_| ControlFlow::Continue(()),
        )?;
        Ok(answer.text)
    }
}

/// Decoding options for a step with `prompt`, rendered as `tokens`.
fn step_options(model: &TextModel, prompt: &Prompt, tokens: &[u32]) -> Result<GenerateOptions> {
    let opening = model.chat_prompt(&prompt.opening())?;
    Ok(GenerateOptions {
        max_new_tokens: prompt.max_new_tokens,
        // Steps whose prompts open alike (the same instructions and worked example) run that
        // opening once per document.
        reuse_cache: true,
        // ... and the template's part before its first placeholder once for every document.
        opening: crate::generate::common_prefix(tokens, &opening),
        ..GenerateOptions::default()
    })
}

/// Adds a step's generation (from a prompt of `prompt_tokens`) to `run`, and shows it with
/// `SIFT_DEBUG`.
fn report(prompt_tokens: usize, generation: &Generation, run: &mut Run) {
    if std::env::var_os("SIFT_DEBUG").is_some() {
        eprintln!(
            "sift: [debug] {} prompt tokens, {} generated ({} guessed ahead) in {:.1}+{:.1}s: {:?}",
            prompt_tokens,
            generation.tokens.len(),
            generation.confirmed_guesses,
            generation.prefill_s,
            generation.decode_s,
            generation.text
        );
    }
    run.add(generation);
}

/// A translation's stream, collected in `text`: it ends once the answer holds a line break or a
/// second sentence (only the first sentence is kept).
fn first_sentence(text: &mut String, piece: &str) -> ControlFlow<()> {
    text.push_str(piece);
    let body = text.trim_start();
    match body.contains('\n') || segment::sentences(body).len() > 1 {
        true => ControlFlow::Break(()),
        false => ControlFlow::Continue(()),
    }
}

/// Where `text` starts going round: the byte offset of the first word that begins a pair of words
/// written before (`사이트들은 제약 없이 제약 없이 ...` loops from the second `제약`).
fn loop_start(text: &str) -> Option<usize> {
    let words: Vec<(usize, &str)> = text
        .split_whitespace()
        .map(|w| (w.as_ptr() as usize - text.as_ptr() as usize, w))
        .collect();
    let mut seen = std::collections::HashSet::new();
    for pair in words.windows(2) {
        if !seen.insert((pair[0].1, pair[1].1)) {
            return Some(pair[0].0);
        }
    }
    None
}

/// How many times a refused translation is asked for again (see [`Summarizer::mend`]).
const RETRIES: usize = 2;

/// One translated sentence: the first sentence of the model's answer.
#[derive(Debug, Clone, PartialEq)]
struct Answer {
    text: String,
    /// The whole answer as generated, and where `text` starts in it.
    raw: String,
    offset: usize,
}

impl Answer {
    /// Writes the amounts whose scale the model got wrong as the article does
    /// ([`Grounding::mend_amounts`]), in `text` and in `raw` alike.
    fn mend_amounts(&mut self, grounding: &Grounding, lang: Lang) {
        let mended = grounding.mend_amounts(&self.text, lang);
        self.rewrite(mended, "amounts mended");
    }

    /// Puts back the names the model garbled in a Korean translation of `sentence`
    /// ([`restore_names`]), where the result `fits`.
    fn restore_names(
        &mut self,
        sentence: &str,
        glossary: &[GlossaryEntry],
        guesses: &[Guess],
        fits: impl Fn(&str) -> bool,
    ) {
        let restored = restore_names(&self.text, sentence, glossary, guesses, fits);
        self.rewrite(restored, "names put back");
    }

    /// Replaces `text` with `new`, in `raw` too, when they differ (`what` names the change for
    /// `SIFT_DEBUG`).
    fn rewrite(&mut self, new: String, what: &str) {
        if new != self.text {
            if std::env::var_os("SIFT_DEBUG").is_some() {
                eprintln!("sift: [debug] {what}: {new:?}");
            }
            let end = self.offset + self.text.len();
            self.raw.replace_range(self.offset..end, &new);
            self.text = new;
        }
    }
}

/// A Korean spelling the model gave a name in its name list and that was refused as not its sound
/// (`Elena Varga = 이엘라 벌라`), kept aside in case a translation writes it all the same.
#[derive(Debug, Clone)]
struct Guess {
    korean: String,
    name: String,
    /// Whether its last word may stand for the name's last word alone: only a rare one (not held
    /// whole by the vocabulary, as a surname is); `오픈` for the `Open` of a tournament is Korean.
    by_last_word: bool,
}

/// `korean`, a translation of the English `sentence`, with each name of the sentence that the model
/// wrote as a garbled Hangul spelling put back as the article writes it: the small model makes up
/// Korean spellings of names it does not know (네이비코퍼 for Nvidia Corp, 아스턴 벨라울드 for Aston
/// Villa), and a misspelled name is another name. A name is left alone when the translation copies
/// it, writes its listed Korean spelling (`glossary`) or a spelling that sounds like it
/// ([`romanize::sounds_alike`]); otherwise the Hangul words nearest to its sound
/// ([`romanize::garbled_distance`], a particle after them kept) give way to it, as long as the
/// result `fits` (the summary stays Korean enough: [`ground::script_holds`]). Before that search, a
/// Korean spelling the model gave the name in its name list and that was refused as not its sound
/// (`guesses`: `Varga = 벌라`) is looked for as written ([`guessed_spans`]). A name translated by
/// its meaning (교육부 for the Education Department) sounds like nothing there and stays; so does one
/// garbled past recognition (맨체스트 유니버시티 for Manchester United).
fn restore_names(
    korean: &str,
    sentence: &str,
    glossary: &[GlossaryEntry],
    guesses: &[Guess],
    fits: impl Fn(&str) -> bool,
) -> String {
    let mut out = korean.to_string();
    for run in ground::name_runs(sentence) {
        let name = run.join(" ");
        let copied = run
            .iter()
            .any(|w| w.chars().count() >= 3 && out.contains(*w));
        let listed = glossary
            .iter()
            .any(|e| e.target == name && out.contains(&e.source));
        if copied || listed {
            continue;
        }
        // The model's own spelling of the name, refused as not its sound, written all the same:
        // it gives way to the name (or its last word to the name's last word: `벌라` for Varga).
        let guessed = guesses
            .iter()
            .filter(|g| g.name == name)
            .flat_map(|g| guessed_spans(&out, g))
            .map(|(start, end, written)| {
                let mut restored = out.clone();
                restored.replace_range(start..end, written);
                restored
            })
            .find(|restored| fits(restored));
        if let Some(restored) = guessed {
            out = restored;
            continue;
        }
        let Some((start, end)) = garbled_span(&out, &name, run.len() + 1) else {
            continue;
        };
        // Without a company's `Corp` or `Inc` when the whole name would leave too little Korean.
        let short = match run[..] {
            [ref head @ .., last] if !head.is_empty() && COMPANY_SUFFIXES.contains(&last) => {
                Some(head.join(" "))
            }
            _ => None,
        };
        for written in std::iter::once(name.clone()).chain(short) {
            let mut restored = out.clone();
            restored.replace_range(start..end, &written);
            if fits(&restored) {
                out = restored;
                break;
            }
        }
    }
    out
}

/// Where `korean` writes `guess`, a Hangul spelling of the English `name`, opening a word and ended
/// by the word's end or a particle: the byte range and what is to stand there (`name`). Then, for
/// a name of several words whose last word is rare ([`Guess::by_last_word`]), the guess's last
/// word of two syllables or more, which stands for the name's last word (a surname, whose given
/// name the model spelled otherwise, `엘리나 벌라가` for Elena Varga, listed `이엘라 벌라`; or the
/// whole name would leave too little Korean).
fn guessed_spans<'g>(korean: &str, guess: &'g Guess) -> Vec<(usize, usize, &'g str)> {
    let (name, guess_text) = (guess.name.as_str(), guess.korean.as_str());
    let find = |needle: &str| {
        korean.match_indices(needle).map(|(at, _)| at).find(|&at| {
            let opens = !korean[..at]
                .chars()
                .next_back()
                .is_some_and(ground::is_hangul);
            let rest: String = korean[at + needle.len()..]
                .chars()
                .take_while(|&c| ground::is_hangul(c))
                .collect();
            opens && (rest.is_empty() || PARTICLES.contains(&rest.as_str()))
        })
    };
    let mut spans: Vec<(usize, usize, &'g str)> = find(guess_text)
        .map(|at| (at, at + guess_text.len(), name))
        .into_iter()
        .collect();
    if let (Some(last), Some(written)) = (
        guess_text.split_whitespace().next_back(),
        name.split_whitespace().next_back(),
    ) {
        if guess.by_last_word
            && guess_text.contains(' ')
            && last.chars().count() >= 2
            && last.chars().all(ground::is_hangul)
        {
            spans.extend(find(last).map(|at| (at, at + last.len(), written)));
        }
    }
    spans
}

/// The particles that may follow a name in Korean, longest first.
const PARTICLES: [&str; 18] = [
    "에서", "으로", "에게", "까지", "부터", "과", "와", "은", "는", "이", "가", "을", "를", "의",
    "에", "로", "도", "만",
];

/// The words that close a company's name and may be left out of it.
const COMPANY_SUFFIXES: [&str; 8] = [
    "Corp", "Inc", "Co", "Ltd", "Group", "Holdings", "Plc", "LLC",
];

/// The byte range in `korean` of the run of up to `most` Hangul words (the last one without its
/// particle) that is the nearest garbled spelling of `name`; `None` when a run
/// already sounds like the name, or none is near it.
fn garbled_span(korean: &str, name: &str, most: usize) -> Option<(usize, usize)> {
    // Each word's Hangul opening, as a byte range; a word holding anything else ends a run after it.
    let mut words: Vec<(usize, usize, bool)> = Vec::new();
    let mut at = 0;
    for token in korean.split(' ') {
        let hangul: usize = token
            .chars()
            .take_while(|&c| ground::is_hangul(c))
            .map(char::len_utf8)
            .sum();
        words.push((at, at + hangul, hangul == token.len()));
        at += token.len() + 1;
    }
    let mut best: Option<(usize, usize, usize)> = None;
    for first in 0..words.len() {
        for last in first..words.len().min(first + most) {
            let (start, _, _) = words[first];
            let (word_start, word_end, _) = words[last];
            if words[first..last].iter().any(|w| !w.2) || word_end == word_start {
                break;
            }
            // The last word whole, or without the particle that closes it.
            let word = &korean[word_start..word_end];
            let cut = PARTICLES
                .iter()
                .filter_map(|p| word.strip_suffix(p))
                .filter(|stem| !stem.is_empty())
                .map(|stem| word_start + stem.len());
            for end in std::iter::once(word_end).chain(cut) {
                let span = &korean[start..end];
                if span.chars().filter(|&c| ground::is_hangul(c)).count() < 2 {
                    continue;
                }
                if romanize::sounds_alike(span, name) {
                    return None;
                }
                if let Some(d) = romanize::garbled_distance(span, name) {
                    if best.is_none_or(|(b, _, _)| d < b) {
                        best = Some((d, start, end));
                    }
                }
            }
        }
    }
    best.map(|(_, start, end)| (start, end))
}

/// Whether the translation `text` of `sentence` into `lang` names only the bodies of the table that
/// `sentence` names ([`exonyms::body_not_in`]; only English translations are held to it): a
/// refusal points at the name, so that the model, asked again with it banned there, names the
/// sentence's own (it wrote `Bank of Korea` for 하나은행, named in another sentence).
fn bodies_held(lang: Lang, sentence: &str, text: &str) -> Result<(), Violation> {
    match lang {
        Lang::En => exonyms::body_not_in(sentence, text).map_or(Ok(()), |name| {
            Err(Violation::NotInSentence(Box::new(Violation::Name(
                name.to_string(),
            ))))
        }),
        Lang::Ko => Ok(()),
    }
}

/// Whether the translation `text` of `sentence` passes the checks of `licensed` and, in English,
/// names only the bodies `sentence` names.
fn checked(licensed: &Grounding, lang: Lang, sentence: &str, text: &str) -> Result<(), Violation> {
    licensed
        .check(text, lang, false, &[])
        .and_then(|()| bodies_held(lang, sentence, text))
}

/// How many refused phrases [`without_refused`] cuts out of one answer at most.
const MAX_CUTS: usize = 3;

/// `answer`, refused by [`checked`], with each refused word's phrase cut out ([`cut::without`])
/// until it passes: `None` if a refusal points at nothing, no whole unit holds it, or it takes
/// more than [`MAX_CUTS`] cuts.
fn without_refused(
    licensed: &Grounding,
    lang: Lang,
    sentence: &str,
    mut answer: Answer,
) -> Option<Answer> {
    for _ in 0..MAX_CUTS {
        let Err(refusal) = checked(licensed, lang, sentence, &answer.text) else {
            return Some(answer);
        };
        let at = refusal.at(&answer.text)?;
        let name = matches!(
            refusal.inner(),
            Violation::Name(_) | Violation::Date(_) | Violation::Untranslated(_)
        );
        let cut = cut::without(&answer.text, at, lang, name)?;
        answer.rewrite(cut, &format!("cut where refused ({refusal})"));
    }
    checked(licensed, lang, sentence, &answer.text)
        .is_ok()
        .then_some(answer)
}

/// A summary sentence and the answer translating it.
type Translated<'s> = (&'s str, Answer);

/// The answers' sentences as one text.
fn joined(answers: &[Translated]) -> String {
    let texts: Vec<&str> = answers.iter().map(|(_, a)| a.text.as_str()).collect();
    texts.join(" ")
}

/// Least cosine, under the encoder, between a sentence and its translation. On the development set's
/// summaries the encoder put translations and their sentences at 0.81-0.93 (median 0.87), and
/// answers about the task itself (`이 문장은 한국어로 번역할 수 없습니다`) at 0.76-0.79. It cannot
/// tell a garbled translation from a good one (those scored 0.83-0.85 as well): this catches only
/// answers that are about something else.
pub const SAME_MEANING: f32 = 0.8;

/// The encoder's cosine similarity of each sentence to its translation, all embedded in one batch.
fn similarities(encoder: &Encoder, pairs: Vec<(&str, &str)>) -> Result<Vec<f32>> {
    if pairs.is_empty() {
        return Ok(Vec::new());
    }
    let mut texts: Vec<&str> = pairs.iter().map(|(s, _)| *s).collect();
    texts.extend(pairs.iter().map(|(_, t)| *t));
    let vectors = encoder.embed(&texts, Prefix::Query)?;
    let n = pairs.len();
    Ok((0..n)
        .map(|i| cosine(&vectors[i], &vectors[n + i]))
        .collect())
}

/// The translations of `pairs` (source sentence, its translation) that keep their source's meaning
/// under the encoder (see [`SAME_MEANING`]), and the refusals of the others.
fn same_meaning<'s>(
    encoder: &Encoder,
    pairs: Vec<Translated<'s>>,
) -> Result<(Vec<Translated<'s>>, Vec<Rejected>)> {
    let similarities = similarities(
        encoder,
        pairs.iter().map(|(s, t)| (*s, t.text.as_str())).collect(),
    )?;
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for ((source, answer), similarity) in pairs.into_iter().zip(similarities) {
        let translation = &answer.text;
        if std::env::var_os("SIFT_DEBUG").is_some() {
            eprintln!("sift: [debug] translation similarity {similarity:.3}: {translation:?}");
        }
        if similarity >= SAME_MEANING {
            kept.push((source, answer));
        } else {
            refused.push(Rejected {
                sentence: translation.clone(),
                reason: format!(
                    "its meaning is far from the sentence it translates (similarity {similarity:.2}, under {SAME_MEANING})"
                ),
            });
        }
    }
    Ok((kept, refused))
}

/// Tokens and seconds over all the steps of one article.
#[derive(Debug, Default)]
struct Run {
    prompt_tokens: usize,
    generated_tokens: usize,
    prefill_s: f64,
    decode_s: f64,
}

impl Run {
    fn add(&mut self, g: &crate::generate::Generation) {
        self.prompt_tokens += g.prompt_tokens;
        self.generated_tokens += g.tokens.len();
        self.prefill_s += g.prefill_s;
        self.decode_s += g.decode_s;
    }
}

/// `Korean` or `English`, from the article's letters; anything else is refused with a clear message.
pub fn article_language(text: &str) -> Result<Lang> {
    if script_share(text, Lang::Ko) >= KOREAN_ARTICLE {
        Ok(Lang::Ko)
    } else if script_share(text, Lang::En) >= KOREAN_ARTICLE {
        Ok(Lang::En)
    } else {
        Err(Error::Input(
            "the article is neither Korean nor English: sift summarizes Korean and English articles (`sift classify` still finds its spam)".into(),
        ))
    }
}

/// The `source = target` lines a translation prompt gives beside each sentence (names, then
/// quantities, in the language translated from first), or `-` when there are none.
fn listing(pairs: impl Iterator<Item = (String, String)>) -> String {
    let lines: Vec<String> = pairs.map(|(from, to)| format!("{from} = {to}")).collect();
    if std::env::var_os("SIFT_DEBUG").is_some() {
        eprintln!("sift: [debug] names and numbers for the translation:");
        lines.iter().for_each(|l| eprintln!("  {l}"));
    }
    match lines.is_empty() {
        true => "-".to_string(),
        false => lines.join("\n"),
    }
}

/// The list beside one translated sentence: `names` (the summary's names and quantities, the same
/// for each of its sentences, so their prompts share that opening), then the `terms` of the summary
/// that the sentence holds (`held`, as [`terms::in_korean`] or [`terms::in_english`] finds them in
/// it: a term listed beside a sentence without it, the model wrote in anyway: `이 주의 몬순 가격`
/// for "this week", monsoon being the next sentence's).
fn listing_with_terms(
    names: &[(String, String)],
    terms: &[(String, String)],
    held: &[(&str, &str)],
) -> String {
    let holds = |term: &str| held.iter().any(|(found, _)| *found == term);
    listing(
        names
            .iter()
            .chain(terms.iter().filter(|(term, _)| holds(term)))
            .cloned(),
    )
}

/// Lines `한국어 = English` whose Korean side `source` (the text being translated) contains.
fn parse_glossary(text: &str, source: &str) -> Vec<GlossaryEntry> {
    let mut out: Vec<GlossaryEntry> = Vec::new();
    for (korean, english) in pairs(text) {
        if !is_name_like(&korean) || !source.contains(&korean) || korean == english {
            continue;
        }
        if !numbers_agree(&korean, &english) {
            continue;
        }
        if english.is_empty() || out.iter().any(|e| e.source == korean) {
            continue;
        }
        out.push(GlossaryEntry {
            source: korean,
            target: english,
        });
    }
    out
}

/// Lines `한국어 = English` whose Korean side the model mis-copied by one syllable (퀵컴 for the
/// summary's 퀄컴), as entries for the word the summary writes, when that word (the opening of a
/// word of the summary, as long as the copy) is the only one that close and the English name
/// sounds like it (the model spells famous names right
/// while it garbles their Hangul). Entries of `known` stay as they are.
fn mended_entries(text: &str, source: &str, known: &[GlossaryEntry]) -> Vec<GlossaryEntry> {
    let words: Vec<&str> = source
        .split(|c: char| !ground::is_hangul(c))
        .filter(|w| w.chars().count() >= 2)
        .collect();
    let mut out: Vec<GlossaryEntry> = Vec::new();
    for (korean, english) in pairs(text) {
        if source.contains(&korean) || !korean.chars().all(ground::is_hangul) {
            continue;
        }
        // The same number of syllables from the start of a word (a particle may follow the name).
        let len = korean.chars().count();
        let one_off = |w: &&str| {
            w.chars().count() == len
                && w.chars()
                    .zip(korean.chars())
                    .filter(|(a, b)| a != b)
                    .count()
                    == 1
        };
        let mut near: Vec<&str> = words
            .iter()
            .map(|w| opening(w, len))
            .filter(one_off)
            .collect();
        near.sort_unstable();
        near.dedup();
        let [word] = near[..] else { continue };
        let listed = |e: &GlossaryEntry| e.source == word;
        if romanize::sounds_alike(word, &english)
            && !known.iter().any(listed)
            && !out.iter().any(listed)
        {
            out.push(GlossaryEntry {
                source: word.to_string(),
                target: english,
            });
        }
    }
    out
}

/// The first `chars` characters of `word` (all of it when shorter).
fn opening(word: &str, chars: usize) -> &str {
    word.char_indices()
        .nth(chars)
        .map_or(word, |(end, _)| &word[..end])
}

/// Lines `English = 한국어` whose English side `source` (the English text being translated) contains,
/// as entries from the Korean spelling to the English name.
fn parse_korean_names(text: &str, source: &str) -> Vec<GlossaryEntry> {
    let mut out: Vec<GlossaryEntry> = Vec::new();
    for (english, korean) in pairs(text) {
        let hangul = korean.chars().any(ground::is_hangul);
        if !hangul || !is_name_like(&korean) || !is_name_like(&english) {
            continue;
        }
        if !numbers_agree(&korean, &english) {
            continue;
        }
        if !source.contains(&english) || out.iter().any(|e| e.target == english) {
            continue;
        }
        out.push(GlossaryEntry {
            source: korean,
            target: english,
        });
    }
    out
}

/// The capitalised names of an `English = 한국어` answer that `source` contains but `spelled` does not
/// give a Korean spelling for: the model wrote none, or one that does not sound like the name.
fn unspelled_names(text: &str, source: &str, spelled: &[GlossaryEntry]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (english, _) in pairs(text) {
        if !is_proper_name(&english) || !is_name_like(&english) || !source.contains(&english) {
            continue;
        }
        if spelled.iter().any(|e| e.target == english) || out.contains(&english) {
            continue;
        }
        out.push(english);
    }
    out
}

/// `name`, a name listed as the article writes it, with the words that an entry of `spelled`
/// (`English`, `한국어`) gives in Hangul put in Korean: `Tropical Storm Debby` is listed as `열대성
/// 폭풍 Debby`, where listing it whole in Latin letters beside `tropical storm = 열대성 폭풍` had the
/// model write the term and drop the name.
fn with_korean_parts(name: &str, spelled: &[(String, String)]) -> String {
    let mut words: Vec<String> = name.split_whitespace().map(str::to_string).collect();
    let mut entries: Vec<&(String, String)> = spelled
        .iter()
        .filter(|(_, korean)| korean.chars().any(ground::is_hangul))
        .collect();
    // The longest first: `Gulf Coast` before `Coast`.
    entries.sort_by_key(|(english, _)| std::cmp::Reverse(english.split_whitespace().count()));
    for (english, korean) in entries {
        let part: Vec<String> = english.split_whitespace().map(str::to_lowercase).collect();
        let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
        if part.is_empty() || part.len() >= lower.len() {
            continue;
        }
        if let Some(at) = lower.windows(part.len()).position(|w| w == part.as_slice()) {
            words.splice(at..at + part.len(), [korean.clone()]);
        }
    }
    words.join(" ")
}

/// Whether the Korean side of `entry` can be the sound of its English name: the whole name, or for a
/// name of several words its first word (알래스카 항공 for Alaska Air: the rest may be translated).
fn korean_spelling_holds(entry: &GlossaryEntry) -> bool {
    let first = |s: &str| s.split_whitespace().next().unwrap_or_default().to_string();
    // Word for word, a later word may be translated (항공 for Air), not misspelled (보르스 for the
    // Brooks of Maya Brooks = 마이야 보르스).
    let (korean, english): (Vec<&str>, Vec<&str>) = (
        entry.source.split_whitespace().collect(),
        entry.target.split_whitespace().collect(),
    );
    let misspelled = korean.len() == english.len()
        && korean.iter().zip(&english).skip(1).any(|(k, e)| {
            !romanize::sounds_alike(k, e) && romanize::garbled_distance(k, e).is_some()
        });
    romanize::sounds_alike(&entry.source, &entry.target)
        || (korean.len() > 1
            && english.len() > 1
            && !misspelled
            && romanize::sounds_alike(&first(&entry.source), &first(&entry.target)))
}

/// Whether every run of Latin letters written onto Hangul in the Korean name `source` (`SK하이닉스`,
/// `J리그`, `KB국민`) stands in its English spelling `target`, in either case. A run standing apart
/// (`리플(XRP)`, `빅테크 CEO`, or a name wholly in Latin letters such as `KAMA`) is not the
/// name's own spelling, and the entry is judged as before.
fn latin_kept(source: &str, target: &str) -> bool {
    let target = target.to_ascii_lowercase();
    let chars: Vec<char> = source.chars().collect();
    let mut at = 0;
    while at < chars.len() {
        if !chars[at].is_ascii_alphabetic() {
            at += 1;
            continue;
        }
        let start = at;
        while at < chars.len() && chars[at].is_ascii_alphabetic() {
            at += 1;
        }
        let touches = (start > 0 && ground::is_hangul(chars[start - 1]))
            || chars.get(at).is_some_and(|&c| ground::is_hangul(c));
        let run: String = chars[start..at].iter().collect();
        if touches && !target.contains(&run.to_ascii_lowercase()) {
            return false;
        }
    }
    true
}

/// Whether the English side of `entry` may stand for its Korean side. Words the model's vocabulary
/// holds whole (Qualcomm, National, Assembly, the letters of `U.S.`) are ones it knows; a rarer
/// capitalised word is a spelling it made up, and must sound like the Korean (see [`romanize`]):
/// the whole name does, or in a name of several words each such word is heard in the Korean (Busan
/// International Film Festival = 부산국제영화제). So must an acronym of three letters or more: it
/// names one organisation, and the model reaches for the famous one (`FDA` for Korea's 식품의약품안전처).
fn spelling_holds(model: &TextModel, entry: &GlossaryEntry) -> bool {
    let rare = rare_words(model, &entry.target);
    rare.is_empty()
        || romanize::sounds_alike(&entry.source, &entry.target)
        || (entry.target.split_whitespace().count() > 1
            && rare
                .iter()
                .all(|w| romanize::heard_within(&entry.source, w).is_some()))
}

/// The capitalised words of an English name that the model's vocabulary does not hold whole, and
/// its acronyms of three letters or more: the words that must sound like the Korean.
fn rare_words<'n>(model: &TextModel, name: &'n str) -> Vec<&'n str> {
    name.split(|c: char| c.is_whitespace() || c == '-' || c == '.')
        .filter(|w| w.starts_with(|c: char| c.is_ascii_uppercase()))
        .filter(|w| is_acronym(w) || model.encode(&format!(" {w}")).map_or(true, |t| t.len() > 1))
        .collect()
}

/// The Korean word of `korean` that a name of several words of an English translation stands for,
/// when the name has rare words ([`rare_words`]) and each is heard opening a word of `korean`
/// ([`romanize::heard_within`]) or spelled by its romanization ([`romanize::spelled_within`]):
/// `Shinhan Bank` for the 신한 of `KB국민·신한·하나` (a name of one word must be spelled so). The
/// name's other words are ones the model knows, as in [`spelling_holds`]; a name of known words
/// alone (`Han Bank`) has nothing to be heard, and is not matched this way.
fn heard_name<'k>(model: &TextModel, korean: &'k str, name: &str) -> Option<&'k str> {
    let rare = rare_words(model, name);
    if rare.is_empty() {
        return None;
    }
    // A word of a longer name may be heard; a name of one word must be spelled exactly (the
    // sound of a whole word is `romanize::heard_in`'s).
    let several = name.contains(' ');
    let mut heard = rare.iter().map(|w| {
        romanize::spelled_within(korean, w)
            .or_else(|| several.then(|| romanize::heard_within(korean, w)).flatten())
    });
    let first = heard.next()??;
    heard.all(|k| k.is_some()).then_some(first)
}

/// Three or more capital letters and nothing else (`FDA`, `NASA`; not `US`, not `Inc`).
fn is_acronym(word: &str) -> bool {
    word.len() >= 3 && word.chars().all(|c| c.is_ascii_uppercase())
}

/// A name, not a clause: two to twenty characters in at most three words.
fn is_name_like(s: &str) -> bool {
    let n = s.chars().count();
    (2..=20).contains(&n) && s.split_whitespace().count() <= 3
}

/// Whether an English phrase is written as a proper name: every word capitalised (or a number),
/// but for the small words names hold (`Bank of Korea`). `Thai rice prices` is not one.
fn is_proper_name(s: &str) -> bool {
    const SMALL: &[&str] = &["of", "and", "the", "for", "de", "van", "von"];
    let mut words = s.split_whitespace().peekable();
    words.peek().is_some()
        && words.all(|w| {
            w.starts_with(|c: char| c.is_ascii_uppercase() || c.is_ascii_digit())
                || SMALL.contains(&w)
        })
}

/// Whether a name list's entry (`korean = english`) has the same numbers on both sides and states no
/// amount. The model's own conversions go wrong (`138억 달러 = $138 billion`, `석 달째 = 100%
/// increase`); sift lists the exact ones beside them ([`ground::english_quantities`]). Names with
/// a number stay (`팰컨9 = Falcon 9`).
fn numbers_agree(korean: &str, english: &str) -> bool {
    let runs = |s: &str| -> Vec<String> {
        s.split(|c: char| !c.is_ascii_digit())
            .filter(|r| !r.is_empty())
            .map(str::to_string)
            .collect()
    };
    let numbers = runs(english);
    if runs(korean) != numbers {
        return false;
    }
    let lower = english.to_lowercase();
    let amount = [
        "$", "%", "percent", "thousand", "million", "billion", "trillion",
    ]
    .iter()
    .any(|u| lower.contains(u))
        || ["%", "천", "만", "억", "조"]
            .iter()
            .any(|u| korean.contains(u));
    numbers.is_empty() || !amount
}

/// `A = B` lines of a model's answer, list markers and quotes removed.
fn pairs(text: &str) -> Vec<(String, String)> {
    let strip = |s: &str| {
        s.trim()
            .trim_matches(|c: char| "\"'`()[]*".contains(c))
            .trim()
            .to_string()
    };
    text.lines()
        .filter_map(|line| {
            let line = line.trim().trim_start_matches(['-', '*', '•']).trim();
            let (a, b) = line.split_once('=')?;
            Some((strip(a), strip(b)))
        })
        .collect()
}

/// `names` (in the order `text` writes them) with two that `text` joins by `and` made one: a name
/// translated by its meaning holds the word (`Food and Drug Administration of Korea` for
/// 식품의약품안전처), and asked about `Food` alone the model could only answer `음식`.
fn joined_names(names: Vec<String>, text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for name in names {
        if let Some(last) = out.last_mut() {
            let both = format!("{last} and {name}");
            if text.contains(&both) {
                *last = both;
                continue;
            }
        }
        out.push(name);
    }
    out
}

/// Answers `English = 한국어` to the question which Korean name each of `names` translates; an answer
/// counts when it is about one of `names` and the translated text `source` contains its Korean side.
fn parse_alignment(text: &str, names: &[String], source: &str) -> Vec<GlossaryEntry> {
    let mut out: Vec<GlossaryEntry> = Vec::new();
    for (english, korean) in pairs(text) {
        let Some(name) = names.iter().find(|n| n.eq_ignore_ascii_case(&english)) else {
            continue;
        };
        if !is_name_like(&korean) {
            continue;
        }
        let Some(korean) = named_in(&korean, source) else {
            continue;
        };
        if out.iter().any(|e| &e.target == name) {
            continue;
        }
        out.push(GlossaryEntry {
            source: korean,
            target: name.clone(),
        });
    }
    out
}

/// The Korean name `answer` as `source` writes it: itself, or the longest stretch of it that
/// `source` writes, when that is three syllables or more and two thirds of it at least (asked what
/// `Food and Drug Administration of Korea` translates, the model answered `한국식품의약품안전처`,
/// where the summary writes 식품의약품안전처). `None` when `source` has no such stretch.
fn named_in(answer: &str, source: &str) -> Option<String> {
    if source.contains(answer) {
        return Some(answer.to_string());
    }
    let chars: Vec<char> = answer.chars().collect();
    let mut best: &[char] = &[];
    for start in 0..chars.len() {
        for end in (start + best.len() + 1)..=chars.len() {
            let stretch: String = chars[start..end].iter().collect();
            if !source.contains(&stretch) {
                break;
            }
            best = &chars[start..end];
        }
    }
    (best.len() >= 3
        && 3 * best.len() >= 2 * chars.len()
        && best.iter().all(|&c| ground::is_hangul(c)))
    .then(|| best.iter().collect())
}

/// Whether a segment ends like a sentence of running text (not a headline, byline or caption).
fn is_body(s: &str) -> bool {
    let s = s.trim_end_matches(['"', '\'', '”', '’', ')', '」', '』']);
    s.ends_with(['.', '?', '!', '。']) && s.split_whitespace().count() >= 3
}

/// A sentence without the wire dateline or byline that opens a story: `(서울=뉴스1) 홍길동 기자 = `,
/// `WASHINGTON, June 18 (Reuters) - `, `RIVERTON, Ore. - `.
fn strip_dateline(s: &str) -> &str {
    let head_len = s.char_indices().nth(60).map_or(s.len(), |(i, _)| i);
    let head = &s[..head_len];
    for sep in [") - ", ") – ", ") — ", " = "] {
        if let Some(at) = head.find(sep) {
            let before = &head[..at];
            if before.contains('(') || before.contains('=') {
                return s[at + sep.len()..].trim_start();
            }
        }
    }
    // An upper-case place name before a dash: "RIVERTON, Ore. - ".
    if let Some(at) = head.find(" - ") {
        let first = head.split([',', ' ']).next().unwrap_or("");
        if first.len() >= 3 && first.chars().all(|c| c.is_ascii_uppercase() || c == '/') {
            return s[at + 3..].trim_start();
        }
    }
    s
}

/// A summary with no sentences, keeping why each candidate was refused.
fn unavailable(lang: Lang, rejected: Vec<Rejected>) -> Summary {
    Summary {
        lang,
        text: String::new(),
        sentences: Vec::new(),
        method: Method::Unavailable,
        rejected,
    }
}

/// Completes `summary` with the most central sentences of the article (`plain`) that fit the limits
/// and say something its sentences do not, keeping article order among the added ones. An empty
/// summary becomes an extractive one; a partial one becomes mixed.
fn complete(summary: &mut Summary, plain: &[&str], centrality: &[f32], grounding: &Grounding) {
    let limits = Limits::for_lang(summary.lang);
    let mut chars = summary.text.chars().count();
    let mut added: Vec<usize> = Vec::new();
    let has_body = plain.iter().any(|s| is_body(s));
    for i in pack::by_centrality(centrality) {
        if summary.sentences.len() + added.len() == limits.max_sentences {
            break;
        }
        let s = plain[i].trim();
        let n = s.chars().count() + usize::from(chars > 0);
        if chars + n > limits.max_chars {
            continue;
        }
        let mut earlier = summary.sentences.clone();
        earlier.extend(added.iter().map(|&j| plain[j].trim().to_string()));
        if !pack::new_to(&earlier, s, has_body, grounding, summary.lang) {
            continue;
        }
        chars += n;
        added.push(i);
    }
    if added.is_empty() {
        if summary.sentences.is_empty() {
            summary.method = Method::Unavailable;
        }
        return;
    }
    added.sort_unstable();
    summary.method = if summary.sentences.is_empty() || summary.method == Method::Extractive {
        Method::Extractive
    } else {
        Method::Mixed
    };
    summary
        .sentences
        .extend(added.iter().map(|&i| plain[i].trim().to_string()));
    summary.text = summary.sentences.join(" ");
}

/// The longest English article sentence translated to be added to a Korean summary (see
/// [`pack::uncovered`]): its Korean runs to about half as many characters, and a Korean summary of
/// an English article left 55-197 of its 300 on the development set.
const EXTRA_CHARS: usize = 200;

/// Similarity at or above which a generated sentence is a copy of an article sentence (the model's
/// slips, 삼성전자 → 산전자, change a character or two of a long sentence).
const NEAR_COPY: f64 = 0.8;
/// Similarity at or above which an article sentence adds nothing to a summary sentence.
const COVERED: f64 = 0.5;

/// Dice coefficient of the two texts' character bigrams (whitespace ignored): 1 for the same text.
fn similarity(a: &str, b: &str) -> f64 {
    fn bigrams(s: &str) -> Vec<(char, char)> {
        let chars: Vec<char> = s.chars().filter(|c| !c.is_whitespace()).collect();
        let mut v: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
        v.sort_unstable();
        v
    }
    let (x, y) = (bigrams(a), bigrams(b));
    if x.is_empty() || y.is_empty() {
        return f64::from(u8::from(a.trim() == b.trim()));
    }
    let (mut i, mut j, mut common) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / (x.len() + y.len()) as f64
}

/// Admits generated sentences one at a time as they complete: each must pass the checks and fit the
/// limits; the first that does not ends the generation (a translation's refused sentence is only
/// left out: its sentences stand each for one of the source's, so the next may still hold).
struct Gate<'g> {
    lang: Lang,
    /// Whether the summary is in the article's language (then Korean stems are checked too).
    same_language: bool,
    grounding: &'g Grounding,
    /// The article's sentences, for a summary in its language: a refused sentence that is a near
    /// copy of one of them is replaced by the original.
    originals: &'g [&'g str],
    limits: Limits,
    buf: String,
    /// Bytes of `buf` already judged.
    judged: usize,
    accepted: Vec<String>,
    chars: usize,
    rejected: Vec<Rejected>,
    closed: bool,
    /// Leave a refused sentence out and go on, rather than stop.
    skip_refused: bool,
    /// The story's lead, to open the summary unless the first sentence judged says it already.
    lead: Option<&'g str>,
    /// Whether the lead was admitted (then it is no sentence of the model's).
    lead_admitted: bool,
}

impl<'g> Gate<'g> {
    /// A gate for a summary in `lang`; `originals` are the article's sentences when the summary is
    /// in the article's language, and empty for a translation.
    fn new(lang: Lang, grounding: &'g Grounding, originals: &'g [&'g str]) -> Self {
        Self {
            lang,
            same_language: !originals.is_empty(),
            grounding,
            originals,
            limits: Limits::for_lang(lang),
            buf: String::new(),
            judged: 0,
            accepted: Vec::new(),
            chars: 0,
            rejected: Vec::new(),
            closed: false,
            skip_refused: false,
            lead: None,
            lead_admitted: false,
        }
    }

    /// The gate for a translation, whose refused sentences are left out.
    fn for_translation(lang: Lang, grounding: &'g Grounding) -> Self {
        Self {
            skip_refused: true,
            ..Self::new(lang, grounding, &[])
        }
    }

    /// Takes a piece of generated text; judges every sentence it completes.
    fn push(&mut self, piece: &str, on_sentence: &mut dyn FnMut(&str)) -> ControlFlow<()> {
        if self.closed {
            return ControlFlow::Break(());
        }
        self.buf.push_str(piece);
        let spans = segment::sentences(&self.buf[self.judged..]);
        // The last segment may still grow; the ones before it are complete.
        let complete = spans.len().saturating_sub(1);
        let base = self.judged;
        for span in &spans[..complete] {
            let sentence = self.buf[base + span.start..base + span.end].to_string();
            self.judged = base + span.end;
            if self.judge(&sentence, on_sentence).is_break() {
                self.closed = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// The generation ended: the last segment is complete too.
    fn close(&mut self, on_sentence: &mut dyn FnMut(&str)) {
        if self.closed {
            return;
        }
        self.closed = true;
        let rest = self.buf[self.judged..].to_string();
        for span in segment::sentences(&rest) {
            if self
                .judge(&rest[span.start..span.end], on_sentence)
                .is_break()
            {
                break;
            }
        }
        self.judged = self.buf.len();
        // The model wrote no sentence: the lead still opens the summary.
        if let Some(lead) = self.lead.take() {
            if self.accepted.is_empty() {
                self.admit_lead(lead, on_sentence);
            }
        }
    }

    fn judge(&mut self, raw: &str, on_sentence: &mut dyn FnMut(&str)) -> ControlFlow<()> {
        let sentence = strip_marker(raw);
        if sentence.is_empty() {
            return ControlFlow::Continue(());
        }
        if self.accepted.len() == self.limits.max_sentences {
            return ControlFlow::Break(());
        }
        let verdict = self
            .grounding
            .check(sentence, self.lang, self.same_language, &self.accepted);
        // A slip in copying (산전자 for 삼성전자) is mended by taking the article's own sentence.
        let (sentence, verdict) = match verdict {
            Err(v) if v != Violation::NotContent => match self.near_copy(sentence) {
                Some(original) => {
                    self.rejected.push(Rejected {
                        sentence: sentence.to_string(),
                        reason: format!("{v}; the article's own sentence stands in its place"),
                    });
                    let again = self.grounding.check(
                        original,
                        self.lang,
                        self.same_language,
                        &self.accepted,
                    );
                    (original, again)
                }
                None => (sentence, Err(v)),
            },
            other => (sentence, other),
        };
        if verdict != Err(Violation::NotContent) {
            if let Some(lead) = self.lead.take() {
                // Said already only by a sentence that stands.
                if verdict.is_err() || similarity(lead, sentence) < COVERED {
                    self.admit_lead(lead, on_sentence);
                }
            }
        }
        if verdict.is_ok() && !self.has_room(sentence) {
            // Its main clause, if that fits and passes: a long last sentence otherwise takes
            // all it says with it.
            let clause = cut::clause_cuts(sentence, self.lang).into_iter().find(|c| {
                self.has_room(c)
                    && self
                        .grounding
                        .check(c, self.lang, self.same_language, &self.accepted)
                        .is_ok()
            });
            let limit = self.limits.max_chars;
            self.rejected.push(Rejected {
                sentence: sentence.to_string(),
                reason: match clause {
                    Some(_) => format!(
                        "the summary would pass {limit} characters; its main clause stands in its place"
                    ),
                    None => format!("the summary would pass {limit} characters"),
                },
            });
            if let Some(clause) = clause {
                self.admit(&clause, on_sentence);
            }
            return ControlFlow::Break(());
        }
        match verdict {
            Ok(()) => {
                self.admit(sentence, on_sentence);
                if self.accepted.len() == self.limits.max_sentences {
                    return ControlFlow::Break(());
                }
                ControlFlow::Continue(())
            }
            // A heading ("요약:") is skipped, not fatal.
            Err(Violation::NotContent) => ControlFlow::Continue(()),
            Err(v) => {
                self.rejected.push(Rejected {
                    sentence: sentence.to_string(),
                    reason: v.to_string(),
                });
                if self.skip_refused {
                    ControlFlow::Continue(())
                } else {
                    ControlFlow::Break(())
                }
            }
        }
    }

    /// Whether `sentence` fits in the length limit after the sentences admitted.
    fn has_room(&self, sentence: &str) -> bool {
        let n = sentence.chars().count() + usize::from(!self.accepted.is_empty());
        self.chars + n <= self.limits.max_chars
    }

    /// Whether a translated sentence would be admitted now, as it stands: it passes the checks
    /// after the sentences admitted, and fits.
    fn would_admit(&self, sentence: &str) -> bool {
        !self.closed
            && self.accepted.len() < self.limits.max_sentences
            && self.has_room(sentence)
            && self
                .grounding
                .check(sentence, self.lang, self.same_language, &self.accepted)
                .is_ok()
    }

    /// Adds a sentence that passed (and fits).
    fn admit(&mut self, sentence: &str, on_sentence: &mut dyn FnMut(&str)) {
        self.chars += sentence.chars().count() + usize::from(!self.accepted.is_empty());
        self.accepted.push(sentence.to_string());
        on_sentence(sentence);
    }

    /// Opens the summary with the story's lead (checked and sized when it was chosen).
    fn admit_lead(&mut self, lead: &str, on_sentence: &mut dyn FnMut(&str)) {
        self.admit(lead, on_sentence);
        self.lead_admitted = true;
    }

    /// Takes a finished text (a translation): every sentence of it is judged, the last one too.
    fn push_whole(&mut self, text: &str, on_sentence: &mut dyn FnMut(&str)) -> ControlFlow<()> {
        if self.closed {
            return ControlFlow::Break(());
        }
        for span in segment::sentences(text) {
            if self
                .judge(&text[span.start..span.end], on_sentence)
                .is_break()
            {
                self.closed = true;
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    /// The translation, or the reasons none of it could be printed.
    fn finish_translation(self) -> Summary {
        let summary = self.finish(Method::Translated);
        match summary.sentences.is_empty() {
            true => unavailable(summary.lang, summary.rejected),
            false => summary,
        }
    }

    /// The article sentence `sentence` nearly copies, if any.
    fn near_copy(&self, sentence: &str) -> Option<&'g str> {
        self.originals
            .iter()
            .map(|o| (similarity(o, sentence), *o))
            .filter(|(sim, _)| *sim >= NEAR_COPY)
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, o)| o.trim())
    }

    fn finish(self, method: Method) -> Summary {
        // Only the lead stands: every sentence is the article's own.
        let method = match (self.lead_admitted, self.accepted.len()) {
            (true, 1) => Method::Extractive,
            (true, _) if method == Method::Generated => Method::Mixed,
            _ => method,
        };
        Summary {
            lang: self.lang,
            text: self.accepted.join(" "),
            sentences: self.accepted,
            method,
            rejected: self.rejected,
        }
    }
}

/// A sentence without the list marker a model likes to put before it (`- `, `1. `, `• `).
fn strip_marker(s: &str) -> &str {
    let s = s.trim();
    let s = s.trim_start_matches(['-', '*', '•', '·']).trim_start();
    let digits = s.bytes().take_while(u8::is_ascii_digit).count();
    if digits > 0 && digits < 3 && s[digits..].starts_with(". ") {
        return s[digits + 2..].trim_start();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datelines_are_stripped() {
        for (input, want) in [
            (
                "(서울=뉴스1) 박주평 기자 = 이재용 회장이 만났다.",
                "이재용 회장이 만났다.",
            ),
            (
                "WASHINGTON, June 18 (Reuters) - The Fed held rates.",
                "The Fed held rates.",
            ),
            (
                "(Reuters) - The average rate fell.",
                "The average rate fell.",
            ),
            (
                "RIVERTON, Ore. - Students will start later.",
                "Students will start later.",
            ),
            (
                "The score was 2 - 1 at half time.",
                "The score was 2 - 1 at half time.",
            ),
            (
                "이 회장은 \"삼성 = 미래\"라고 말했다.",
                "이 회장은 \"삼성 = 미래\"라고 말했다.",
            ),
        ] {
            assert_eq!(strip_dateline(input), want);
        }
    }

    #[test]
    fn body_sentences_end_like_sentences() {
        assert!(is_body("이 회장은 12일에는 아마존 본사를 찾았다."));
        assert!(is_body("He said \"we will win.\""));
        assert!(!is_body(
            "저커버크 메타 CEO 자택 초대받아…아마존·퀄컴 CEO와도 회동"
        ));
        assert!(!is_body("By Daniel Brooks"));
    }

    #[test]
    fn a_summary_may_write_hangul_latin_and_symbols_but_no_other_script() {
        for ok in [
            "㎥당 58㎍",
            " 이재용",
            "Zürich",
            "㈜삼성",
            "※ 36∼75",
            "「전,란」",
            "\u{FFFD}",
            "★",
        ] {
            assert!(writable(ok), "{ok}");
        }
        for no in ["中", "потреб", "ตอน", "です", " ملف"] {
            assert!(!writable(no), "{no}");
        }
    }

    #[test]
    fn languages_parse() {
        assert_eq!(Lang::parse_list("ko,en").unwrap(), vec![Lang::Ko, Lang::En]);
        assert_eq!(Lang::parse_list("EN").unwrap(), vec![Lang::En]);
        assert!(Lang::parse_list("fr").is_err());
        assert!(Lang::parse_list(",").is_err());
    }

    #[test]
    fn article_language_by_script() {
        assert_eq!(
            article_language("삼성전자가 새 공장을 짓는다.").unwrap(),
            Lang::Ko
        );
        assert_eq!(
            article_language("Samsung builds a plant.").unwrap(),
            Lang::En
        );
        assert!(article_language("Это новости на русском языке.").is_err());
    }

    fn pairs_of(g: &[GlossaryEntry]) -> Vec<(&str, &str)> {
        g.iter()
            .map(|e| (e.source.as_str(), e.target.as_str()))
            .collect()
    }

    #[test]
    fn glossary_keeps_only_names_the_summary_has() {
        let summary = "이재용 회장은 퀄컴과 아마존을 찾았다.";
        let g = parse_glossary(
            "이재용 = Lee Jae-yong\n- 퀄컴 = Qualcomm\n애플 = Apple\n아마존 = 아마존\nnoise",
            summary,
        );
        assert_eq!(
            pairs_of(&g),
            vec![("이재용", "Lee Jae-yong"), ("퀄컴", "Qualcomm")]
        );
    }

    #[test]
    fn a_name_miscopied_by_one_syllable_is_mended_when_it_sounds_right() {
        let summary = "이 회장은 아마존, 퀄컴과 만났다. 삼성전자는 회의를 연다.";
        let known = parse_glossary("아마존 = Amazon", summary);
        let mended = mended_entries(
            "퀵컴 = Qualcomm\n아마존 = Amazon\n산성전자 = Samsung Electronics\n퀀컴 = Quanta\n회담 = talks",
            summary,
            &known,
        );
        // 퀵컴 is one syllable from 퀄컴(과) and Qualcomm sounds like it; 아마존 was copied right; 산성전자
        // is two syllables off; Quanta does not sound like 퀄컴; 회담 is one off 회의 and 회장 alike.
        assert_eq!(pairs_of(&mended), vec![("퀄컴", "Qualcomm")]);
    }

    #[test]
    fn the_model_s_own_amounts_and_changed_numbers_leave_the_name_list() {
        let answer = "반도체 수출 = Semiconductor exports\n138억 달러 = $138 billion\n석 달째 늘며 = 100% increase\n팰컨9 로켓 = Falcon 9 rocket\n중형위성 3호 = Satellite 4";
        let source = "반도체 수출은 138억 달러로 석 달째 늘며, 중형위성 3호는 팰컨9 로켓에 실렸다.";
        assert_eq!(
            pairs_of(&parse_glossary(answer, source)),
            vec![
                ("반도체 수출", "Semiconductor exports"),
                ("팰컨9 로켓", "Falcon 9 rocket")
            ]
        );
        let answer = "$1.9 billion = 19억 달러\nAlaska Air = 알래스카 항공\nBoeing 737 = 보잉 737";
        let source = "Alaska Air paid $1.9 billion for Boeing 737 jets.";
        assert_eq!(
            pairs_of(&parse_korean_names(answer, source)),
            vec![("알래스카 항공", "Alaska Air"), ("보잉 737", "Boeing 737")]
        );
    }

    #[test]
    fn only_proper_names_are_listed_to_be_copied_as_they_stand() {
        assert!(is_proper_name("Bank of Korea") && is_proper_name("Boeing 737"));
        assert!(!is_proper_name("Thai rice prices") && !is_proper_name(""));
        let answer = "Thai rice prices = 태평양 빈우\nHawaiian Holdings = 쿼리웨이드 하비드";
        let source = "Thai rice prices fell as Hawaiian Holdings sold.";
        assert_eq!(
            unspelled_names(answer, source, &[]),
            vec!["Hawaiian Holdings".to_string()]
        );
    }

    #[test]
    fn acronyms_are_told_apart_from_short_names_and_words() {
        assert!(is_acronym("FDA") && is_acronym("NASA"));
        assert!(!is_acronym("US") && !is_acronym("Inc") && !is_acronym("F-35"));
    }

    #[test]
    fn korean_spellings_are_kept_for_names_the_english_has_and_that_sound_alike() {
        let answer = "Hawaiian Airlines = 하와이안 항공\nAlaska Air = 알래스카 항공\nBarcelona = 벌라니카\n\
                      Hawaiian Holdings = 해바라드 홀딩스\nFDA = FDA\nParis = 파리\n- Alaska Air = 알래스카";
        let text = "Alaska Air bought Hawaiian Airlines and Hawaiian Holdings; Barcelona won.";
        let parsed = parse_korean_names(answer, text);
        assert_eq!(
            pairs_of(&parsed),
            [
                ("하와이안 항공", "Hawaiian Airlines"),
                ("알래스카 항공", "Alaska Air"),
                ("벌라니카", "Barcelona"),
                ("해바라드 홀딩스", "Hawaiian Holdings"),
            ],
            "Latin-only answers, names the text lacks and second answers are dropped"
        );
        let heard: Vec<&str> = parsed
            .iter()
            .filter(|e| korean_spelling_holds(e))
            .map(|e| e.target.as_str())
            .collect();
        assert!(heard.contains(&"Alaska Air"), "{heard:?}");
        assert!(heard.contains(&"Hawaiian Airlines"), "{heard:?}");
        assert!(!heard.contains(&"Barcelona"), "{heard:?}");
        assert!(!heard.contains(&"Hawaiian Holdings"), "{heard:?}");
    }

    #[test]
    fn names_without_a_korean_spelling_that_holds_stay_as_the_article_writes_them() {
        let answer = "Alaska Air = 알래스카 항공\nBarcelona = 벌라니카\nFDA = FDA\n\
                      consumers = 고객\nAlaska Air = 알래스카\nParis = 파리\nHawaiian Holdings = 해바라드";
        let text = "Alaska Air bought Hawaiian Holdings; the FDA warned consumers in Barcelona.";
        let spelled: Vec<GlossaryEntry> = parse_korean_names(answer, text)
            .into_iter()
            .filter(korean_spelling_holds)
            .collect();
        assert_eq!(pairs_of(&spelled), [("알래스카 항공", "Alaska Air")]);
        assert_eq!(
            unspelled_names(answer, text, &spelled),
            ["Barcelona", "FDA", "Hawaiian Holdings"],
            "spelled names, lower-case words and names the text lacks are left out"
        );
    }

    #[test]
    fn a_name_listed_as_written_has_its_spelled_parts_in_korean() {
        let pair = |e: &str, k: &str| (e.to_string(), k.to_string());
        let spelled = [
            pair("tropical storm", "열대성 폭풍"),
            pair("Florida", "플로리다"),
            pair("City Council", "City Council"),
        ];
        assert_eq!(
            with_korean_parts("Tropical Storm Debby", &spelled),
            "열대성 폭풍 Debby"
        );
        assert_eq!(
            with_korean_parts("Millbrook City Council", &spelled),
            "Millbrook City Council",
            "a part listed in Latin letters stays"
        );
        assert_eq!(
            with_korean_parts("Florida", &spelled),
            "Florida",
            "a whole name is not its own part"
        );
    }

    #[test]
    fn a_korean_spelling_of_several_words_misspells_none() {
        let entry = |k: &str, e: &str| GlossaryEntry {
            source: k.to_string(),
            target: e.to_string(),
        };
        assert!(korean_spelling_holds(&entry("아미트 메타", "Amit Mehta")));
        assert!(korean_spelling_holds(&entry(
            "알래스카 항공 그룹",
            "Alaska Air Group"
        )));
        assert!(
            !korean_spelling_holds(&entry("마이야 보르스", "Maya Brooks")),
            "a later word misspelled"
        );
    }

    #[test]
    fn a_matched_name_is_taken_as_the_summary_writes_it() {
        let source = "식품의약품안전처는 KB국민·신한·하나은행 등에 요청했다.";
        assert_eq!(
            named_in("식품의약품안전처", source).as_deref(),
            Some("식품의약품안전처")
        );
        assert_eq!(
            named_in("한국식품의약품안전처", source).as_deref(),
            Some("식품의약품안전처")
        );
        // Too little of it is in the summary: 신한 of 신한은행, 안전 of 국가안전처.
        assert_eq!(named_in("신한은행", source), None);
        assert_eq!(named_in("국가안전처", source), None);
    }

    #[test]
    fn names_joined_by_and_are_asked_about_as_one() {
        let text = "The Food and Drug Administration of Korea and Meta met Kim and Lee.";
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            joined_names(
                names(&["Food", "Drug Administration of Korea", "Kim"]),
                text
            ),
            ["Food and Drug Administration of Korea", "Kim"]
        );
        // Not joined in the text: asked about one by one.
        assert_eq!(joined_names(names(&["Food", "Kim"]), text), ["Food", "Kim"]);
    }

    #[test]
    fn names_match_back_only_to_korean_the_article_has() {
        let article = "이재용 회장은 퀄컴과 아마존을 찾았다.";
        let names: Vec<String> = ["Lee Jae-yong", "Qualcomm", "Apple", "Amazon", "Meta"]
            .map(String::from)
            .into();
        let answer = "Lee Jae-yong = 이재용\n- Qualcomm = 퀄컴\nApple = 애플\nAmazon = 아\nTim Cook = 이재용\nMeta = 이재용 회장은 퀄컴과 아마존을 찾았다.\nnoise";
        let g = parse_alignment(answer, &names, article);
        assert_eq!(
            pairs_of(&g),
            vec![("이재용", "Lee Jae-yong"), ("퀄컴", "Qualcomm")]
        );
    }

    #[test]
    fn garbled_names_go_back_to_the_articles_spelling() {
        let alone = |text: &str| ground::script_holds(text, &[], Lang::Ko).is_ok();
        let nvidia = "Nvidia Corp. forecast second-quarter revenue above Wall Street estimates.";
        assert_eq!(
            restore_names(
                "네이비코퍼는 2분기 매출이 월가의 예상을 웃돌 것으로 내다봤으며 인공지능 수요에 기대를 걸었다.",
                nvidia,
                &[],
                &[],
                alone
            ),
            "Nvidia는 2분기 매출이 월가의 예상을 웃돌 것으로 내다봤으며 인공지능 수요에 기대를 걸었다."
        );
        // A listed spelling, one that sounds like the name, a copied name and a name translated by
        // its meaning all stay.
        let listed = [GlossaryEntry {
            source: "엔비디아".into(),
            target: "Nvidia Corp".into(),
        }];
        for korean in [
            "엔비디아는 수익이 늘 것으로 예상했다.",
            "엔비디어 코프는 수익이 늘 것으로 예상했다.",
            "Nvidia는 수익이 늘 것으로 예상했다.",
        ] {
            assert_eq!(restore_names(korean, nvidia, &listed, &[], alone), korean);
        }
        let senate = "The Senate passed the bill.";
        assert_eq!(
            restore_names("상원은 법안을 통과시켰다.", senate, &[], &[], alone),
            "상원은 법안을 통과시켰다."
        );
        // Not where the sentence would be more Latin than Korean allows.
        let short = "프리드리드 마크는 금리를 발표했다.";
        let freddie = "Freddie Mac announced the rate.";
        assert_eq!(restore_names(short, freddie, &[], &[], alone), short);
        // A word of the sentence that is one edit from a short name is no spelling of it.
        let quote = "\"I had to find something extra at the end,\" Varga said on court.";
        let korean = "\"마지막에 뭔가 더 필요했어요\"라고 벌라스가 코트에서 말했다.";
        assert_eq!(restore_names(korean, quote, &[], &[], alone), korean);
        // Alone, this sentence has no room for `Aston Villa`; after a sentence of Hangul alone, the
        // summary has. A spelling that sounds like its name (마베모, Mbeumo) stays.
        let villa =
            "Bryan Mbeumo scored twice for Manchester United to win 2-1 against Aston Villa.";
        let garbled = "브라운 마베모는 아스턴 벨라울드를 상대로 두 골을 넣어 맨체스트 유니버시티의 2-1 승리를 이끌었다.";
        assert_eq!(restore_names(garbled, villa, &[], &[], alone), garbled);
        let earlier = [
            "비가 내린 일요일 오후 경기장에서 열린 프리미어리그 경기에서 홈 팀이 역전승을 거뒀다."
                .to_string(),
        ];
        let after = |text: &str| ground::script_holds(text, &earlier, Lang::Ko).is_ok();
        let restored = restore_names(garbled, villa, &[], &[], after);
        assert!(restored.contains("Aston Villa를"), "{restored}");
        assert!(restored.contains("브라운 마베모는"), "{restored}");
        assert!(after(&restored), "{restored}");
        // The model's own refused spelling, written anyway: the whole, or its last word for the
        // name's last word; not inside another word.
        let guess = |korean: &str, name: &str, by_last_word: bool| Guess {
            korean: korean.into(),
            name: name.into(),
            by_last_word,
        };
        let varga = "Elena Varga won the final against Maya Brooks.";
        let guesses = [guess("이엘라 벌라", "Elena Varga", true)];
        assert_eq!(
            restore_names(
                "엘리나 벌라가 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다.",
                varga,
                &[],
                &guesses,
                alone
            ),
            "엘리나 Varga가 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다."
        );
        // The whole name where the summary has room for it; else its last word.
        let whole = "이엘라 벌라는 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다.";
        assert_eq!(
            restore_names(whole, varga, &[], &guesses, after),
            "Elena Varga는 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다."
        );
        assert_eq!(
            restore_names(whole, varga, &[], &guesses, alone),
            "이엘라 Varga는 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다."
        );
        assert_eq!(
            restore_names(
                "엘리나 벌라운드가 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다.",
                varga,
                &[],
                &guesses,
                alone
            ),
            "엘리나 벌라운드가 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다."
        );
        // A common last word is not the name's: 오픈 stays for Open.
        let open = "Varga won the Pacific Coast Open final.";
        let guesses = [guess("패시안 코스트 오픈", "Pacific Coast Open", false)];
        let korean =
            "Varga는 패시픽 코스트 오픈 결승에서 상대를 꺾고 네 번째 메이저 대회 우승을 차지했다.";
        assert_eq!(restore_names(korean, open, &[], &guesses, alone), korean);
    }

    #[test]
    fn a_korean_names_latin_letters_stay_in_its_english_spelling() {
        assert!(!latin_kept("J리그", "La Liga"));
        assert!(latin_kept("J리그", "J.League"));
        assert!(latin_kept("SK하이닉스", "SK Hynix"));
        assert!(latin_kept("KB국민·신한", "kb Kookmin and Shinhan"));
        assert!(!latin_kept("KB국민은행", "Kookmin Bank"));
        assert!(latin_kept("삼성전자", "Samsung Electronics"));
        // Letters standing apart are not the name's own.
        assert!(latin_kept(
            "KAMA",
            "Korean Automobile Mobility Industry Association"
        ));
        assert!(latin_kept("리플(XRP)", "Ripple"));
        assert!(latin_kept("글로벌 빅테크 CEO", "global big tech"));
    }

    #[test]
    fn a_body_named_beyond_its_sentence_is_refused_at_the_name() {
        let korean = "KB국민·신한·하나·우리은행 등 4대 은행의 금리가 내렸다.";
        let english = "KB Bank, Shinhan Bank, Bank of Korea and Woori Bank cut rates.";
        let refusal = bodies_held(Lang::En, korean, english).unwrap_err();
        assert_eq!(
            refusal,
            Violation::NotInSentence(Box::new(Violation::Name("Bank of Korea".into())))
        );
        assert_eq!(
            refusal.to_string(),
            "name Bank of Korea is not in the sentence it translates"
        );
        assert_eq!(refusal.at(english), english.find("Bank of Korea"));
        assert!(bodies_held(
            Lang::En,
            "한국은행이 금리를 내렸다.",
            "The Bank of Korea cut rates."
        )
        .is_ok());
        // Korean translations are not held to it.
        assert!(bodies_held(Lang::Ko, english, korean).is_ok());
    }

    #[test]
    fn a_refused_phrase_is_cut_out_of_an_answer_until_it_passes() {
        let korean = "수도권 빌라 190여 채를 사들여 세입자들로부터 보증금 300억 원가량을 가로챈 일당에게 중형이 선고됐다.";
        let licensed = Grounding::new(korean);
        let answer = |text: &str| Answer {
            text: text.to_string(),
            raw: format!(" {text}"),
            offset: 1,
        };
        // A place the article does not name, and a bank it does not name in its sentence.
        let kept = without_refused(
            &licensed,
            Lang::En,
            korean,
            answer("The ring that bought 190 houses in Seoul took 30 billion won from tenants of the Bank of Korea."),
        )
        .expect("both refused phrases cut out");
        assert_eq!(
            kept.text,
            "The ring that bought 190 houses took 30 billion won from tenants."
        );
        assert_eq!(kept.raw, format!(" {}", kept.text));
        // A number held in its phrase stays refused, and so does a refused subject.
        for refused in [
            "The ring that bought 190 houses took 30 billion won from 4,000 tenants.",
            "Seoul police said the ring bought 190 houses and took 30 billion won.",
        ] {
            assert!(without_refused(&licensed, Lang::En, korean, answer(refused)).is_none());
        }
    }

    #[test]
    fn a_sentence_is_listed_the_summary_s_names_and_only_its_own_terms() {
        let names = vec![("서울".to_string(), "Seoul".to_string())];
        let summary = "서울에 폭염특보가 내려졌다. 밤에는 열대야가 나타났다.";
        let terms: Vec<(String, String)> = terms::in_korean(summary)
            .into_iter()
            .map(|(k, e)| (k.to_string(), e.to_string()))
            .collect();
        assert_eq!(terms.len(), 2, "{terms:?}");
        let held = terms::in_korean("밤에는 열대야가 나타났다.");
        let listed = listing_with_terms(&names, &terms, &held);
        assert_eq!(listed, "서울 = Seoul\n열대야 = tropical night");
        assert_eq!(listing_with_terms(&[], &terms, &[]), "-");
    }

    #[test]
    fn a_translation_leaves_out_a_refused_sentence_and_goes_on() {
        let g = Grounding::new("Qualcomm met Amazon in 2026. Meta met Amazon too.");
        let mut gate = Gate::for_translation(Lang::En, &g);
        let mut seen = Vec::new();
        let _ = gate.push(
            "Qualcomm met Amazon in 2027. Meta met Amazon too. Qualcomm met Meta in 2026.",
            &mut |s: &str| seen.push(s.to_string()),
        );
        gate.close(&mut |s: &str| seen.push(s.to_string()));
        let s = gate.finish(Method::Translated);
        assert_eq!(
            s.sentences,
            ["Meta met Amazon too.", "Qualcomm met Meta in 2026."]
        );
        assert_eq!(s.rejected.len(), 1);
        assert!(s.rejected[0].reason.contains("2027"), "{:?}", s.rejected);
        assert_eq!(seen, s.sentences);
    }

    #[test]
    fn gate_admits_checked_sentences_and_stops_at_the_first_failure() {
        let g = Grounding::new("삼성은 2026년 퀄컴을 만났다. 이재용 회장은 아마존도 찾았다.");
        let originals = [
            "삼성은 2026년 퀄컴을 만났다.",
            "이재용 회장은 아마존도 찾았다.",
        ];
        let mut gate = Gate::new(Lang::Ko, &g, &originals);
        let mut seen = Vec::new();
        let mut on = |s: &str| seen.push(s.to_string());
        assert!(gate
            .push("요약:\n1. 삼성은 2026년 퀄컴을 만났다.", &mut on)
            .is_continue());
        assert!(gate
            .push(" 이재용 회장은 아마존도 찾았다.", &mut on)
            .is_continue());
        // The third sentence has an invented number: refused, generation ends.
        assert!(gate
            .push(" 삼성은 2027년 애플도 만났다. 더", &mut on)
            .is_break());
        let s = gate.finish(Method::Generated);
        assert_eq!(
            s.sentences,
            vec![
                "삼성은 2026년 퀄컴을 만났다.",
                "이재용 회장은 아마존도 찾았다."
            ]
        );
        assert_eq!(s.rejected.len(), 1);
        assert!(s.rejected[0].reason.contains("2027"), "{:?}", s.rejected);
        assert_eq!(seen, s.sentences);
    }

    #[test]
    fn the_lead_opens_the_summary_unless_the_first_sentence_says_it() {
        let lead = "삼성전자는 2026년 평택에 새 반도체 공장을 짓는다고 밝혔다.";
        let quote = "한 관계자는 \"투자를 늘릴 것\"이라고 말했다.";
        let g = Grounding::new(&format!("{lead} {quote} 공장은 내년에 문을 연다."));
        let originals = [lead, quote];
        let run = |text: &str| {
            let mut gate = Gate::new(Lang::Ko, &g, &originals);
            gate.lead = Some(lead);
            let mut seen = Vec::new();
            let _ = gate.push(text, &mut |s: &str| seen.push(s.to_string()));
            gate.close(&mut |s: &str| seen.push(s.to_string()));
            let summary = gate.finish(Method::Generated);
            assert_eq!(seen, summary.sentences, "streamed in order");
            summary.sentences
        };
        // The model opened with a quote from the end: the lead goes first.
        assert_eq!(run(&format!("요약: {quote}")), [lead, quote]);
        // It said the lead in its own words: nothing is added.
        let own = "삼성전자는 평택에 새 반도체 공장을 짓는다.";
        assert_eq!(run(own), [own]);
        // It wrote nothing, or said the lead in a sentence the checks refuse (새로 is not in the
        // article): the lead still stands.
        assert_eq!(run(""), [lead]);
        assert_eq!(
            run("삼성전자는 2026년 평택에 반도체 공장을 새로 짓는다."),
            [lead]
        );
    }

    #[test]
    fn the_gate_admits_a_long_last_sentence_s_main_clause() {
        let article =
            "Sales rose 5% in the first quarter of the year at the company. Costs also rose.";
        let grounding = Grounding::new(article);
        let mut gate = Gate::for_translation(Lang::En, &grounding);
        gate.limits.max_chars = 90;
        let first = "Sales rose 5% in the first quarter of the year at the company.";
        let long =
            "Costs rose in the first quarter of the year, while sales rose 5% at the company.";
        let _ = gate.push_whole(&format!("{first} {long}"), &mut |_| {});
        let summary = gate.finish_translation();
        assert_eq!(summary.sentences, [first]);
        let mut gate = Gate::for_translation(Lang::En, &grounding);
        gate.limits.max_chars = 120;
        let _ = gate.push_whole(&format!("{first} {long}"), &mut |_| {});
        let summary = gate.finish_translation();
        assert_eq!(
            summary.sentences,
            [first, "Costs rose in the first quarter of the year."]
        );
        assert!(summary.rejected[0].reason.contains("main clause"));
    }

    #[test]
    fn gate_holds_the_length_limit() {
        let long = "가".repeat(200);
        let article = format!("{long}다. {long}나.");
        let g = Grounding::new(&article);
        let (a, b) = (format!("{long}다."), format!("{long}나."));
        let originals = [a.as_str(), b.as_str()];
        let mut gate = Gate::new(Lang::Ko, &g, &originals);
        let mut on = |_: &str| {};
        let _ = gate.push(&format!("{long}다. {long}나."), &mut on);
        gate.close(&mut on);
        let s = gate.finish(Method::Generated);
        assert_eq!(s.sentences.len(), 1);
        assert!(s.text.chars().count() <= 300);
        assert!(s.rejected[0].reason.contains("300"), "{:?}", s.rejected);
    }

    #[test]
    fn a_translation_gate_says_beforehand_what_it_would_admit() {
        let g = Grounding::new("Nvidia said sales rose.");
        let mut gate = Gate::for_translation(Lang::Ko, &g);
        let mut on = |_: &str| {};
        let first = format!("{}다.", "가".repeat(250));
        assert!(gate.would_admit(&first));
        let _ = gate.push_whole(&first, &mut on);
        // After it, a sentence that would pass 300 characters, or one with a name the article does
        // not have, would not be admitted; a short Korean one would.
        assert!(!gate.would_admit(&format!("{}다.", "나".repeat(60))));
        assert!(!gate.would_admit("Samsung은 늘었다."));
        assert!(gate.would_admit("Nvidia는 올해 매출이 크게 늘었다고 밝혔다."));
    }

    #[test]
    fn extractive_fits_the_limits() {
        // A headline, a byline and three sentences: only the sentences may be taken.
        let texts = [
            "삼성 평택 새 공장 착공",
            "(서울=뉴스1) 기자",
            "삼성전자가 새 공장을 짓는다.",
            "공장은 평택에 들어선다.",
            "투자 규모는 크다.",
        ];
        let centrality = [0.95, 0.9, 0.8, 0.7, 0.1];
        let g = Grounding::new(&texts.join(" "));
        let mut s = unavailable(Lang::Ko, Vec::new());
        complete(&mut s, &texts, &centrality, &g);
        assert_eq!(s.method, Method::Extractive);
        assert_eq!(s.sentences, vec![texts[2], texts[3], texts[4]]);
        // A partial summary is completed with what it does not already say.
        let mut s = unavailable(Lang::Ko, Vec::new());
        s.sentences = vec!["삼성전자가 새 공장을 짓는다고 한다.".into()];
        complete(&mut s, &texts, &centrality, &g);
        assert_eq!(s.method, Method::Mixed);
        assert_eq!(s.sentences[1..], [texts[3], texts[4]]);
    }

    #[test]
    fn a_slip_in_copying_is_mended_with_the_original() {
        let original = "삼성전자는 이달 말 주요 임원들이 참석하는 글로벌 전략회의를 열 계획이다.";
        let article = format!("이 회장은 미국에서 돌아왔다. {original}");
        let g = Grounding::new(&article);
        let originals = ["이 회장은 미국에서 돌아왔다.", original];
        let mut gate = Gate::new(Lang::Ko, &g, &originals);
        let mut on = |_: &str| {};
        let _ = gate.push(
            "산전자는 이달 말 주요 임원들이 참석하는 글로벌 전략회의를 열 계획이다. 끝",
            &mut on,
        );
        let s = gate.finish(Method::Generated);
        assert_eq!(s.sentences, vec![original]);
        assert!(s.rejected[0].reason.contains("산전"), "{:?}", s.rejected);
        // A sentence of its own that fails is not "mended" with some other sentence.
        let mut gate = Gate::new(Lang::Ko, &g, &originals);
        let _ = gate.push("애플은 이달 말 새 전화기를 내놓는다. 끝", &mut on);
        assert!(gate.finish(Method::Generated).sentences.is_empty());
    }

    #[test]
    fn a_loop_starts_at_the_first_pair_of_words_written_again() {
        let text = "사이트들은 제약 없이 제약 없이 제약";
        assert_eq!(
            loop_start(text),
            text.find("제약 없이 제약").map(|i| i + "제약 없이 ".len())
        );
        let text = "작품, 특히 다국적 대형 대형 대형";
        assert_eq!(&text[loop_start(text).unwrap()..], "대형 대형");
        assert_eq!(
            loop_start("The company said its sales rose 5% last year"),
            None
        );
    }

    #[test]
    fn similarity_is_one_for_equal_texts_and_low_for_unrelated_ones() {
        assert_eq!(similarity("삼성전자 공장", "삼성전자  공장"), 1.0);
        assert!(similarity("삼성전자는 공장을 짓는다", "산전자는 공장을 짓는다") > 0.8);
        assert!(similarity("삼성전자는 공장을 짓는다", "애플은 전화기를 판다") < 0.2);
    }
}
