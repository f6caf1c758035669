//! `toxicity`: insults, threats, harassment, profanity and slurs.
//!
//! A weighted lexicon with grammar for direction: an insult aimed at the reader ("you are an
//! idiot") weighs far more than the word alone, a threat ("I will hurt you", "kill yourself")
//! and a slur weigh most, profanity alone weighs little. Matching runs on the normalised text
//! and its leetspeak reading, so `1d10t` and `ｉｄｉｏｔ` count. Weights combine as
//! 1 − Π(1 − wᵢ); the detector reports at `threshold`.

use std::sync::LazyLock;

use regex::Regex;
use serde::Deserialize;

use crate::detector::{Detector, Finding, ScanInput, Severity, parse_config};
use crate::error::Result;
use crate::prepare::ViewKind;
use crate::registry::{BOTH, DetectorInfo};

pub const INFO: DetectorInfo = DetectorInfo {
    id: "toxicity",
    name: "Toxicity",
    directions: BOTH,
    summary: "Insults aimed at the reader, threats, encouragement of self-harm, slurs and profanity in responses (brand and safety harm) or prompts (abuse of the service, attempts to make the model mirror abuse).",
    false_positives: "A lexicon has no sense of quotation or irony: a response that quotes an abusive message or discusses a slur is reported; reclaimed or in-group use is not distinguished. Profanity alone stays below the default threshold.",
    references: &[
        "OWASP LLM05:2025 Improper Output Handling",
        "OWASP LLM09:2025 Misinformation",
        "AML.T0048 External Harms",
        "AML.M0020 Generative AI Guardrails",
    ],
    eval_label: Some("toxicity"),
    build: |v| {
        Ok(Box::new(Toxicity {
            config: parse_config(INFO.id, v)?,
        }))
    },
};

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    pub threshold: f32,
}

impl Default for Config {
    fn default() -> Self {
        Config { threshold: 0.5 }
    }
}

pub struct Toxicity {
    config: Config,
}

const INSULT: &str = r"(?:idiot|idiots|idiotic|stupid|moron|morons|moronic|imbecile|dumbass|dumb|loser|losers|pathetic|worthless|useless|retard|retarded|cretin|clown|scum|scumbag|trash|garbage|ugly|disgusting|pig|jerk|dimwit|halfwit|nitwit|numbskull|buffoon|brainless|incompetent|fool|fools|freak|creep|parasite|dumbest|stupidest|clueless|crybaby|waste of (?:space|oxygen|air)|piece of (?:shit|crap|garbage|trash)|failure|lowlife|vermin|subhuman|bitch|bastard|asshole|dickhead|prick|twat|wanker|douchebag|shithead)";

struct Pattern {
    category: &'static str,
    weight: f32,
    regex: Regex,
}

static PATTERNS: LazyLock<Vec<Pattern>> = LazyLock::new(|| {
    let p = |category, weight, pattern: &str| Pattern {
        category,
        weight,
        regex: Regex::new(pattern).expect("static regex"),
    };
    vec![
        p(
            "threat",
            0.95,
            r"\b(?:i|we)(?: will|'ll| am going to| are going to|'m going to|'re going to| gonna| want to| wanna)(?: \w+)? (?:kill|hurt|beat|murder|stab|shoot|strangle|destroy|end|rape|break your) (?:you|your|u)\b",
        ),
        p(
            "threat",
            0.95,
            r"\b(?:you|u) (?:should|deserve to|ought to|need to|better) (?:die|be killed|be shot|rot|suffer)\b|\b(?:go|just) (?:die|kill yourself)\b|\bkill (?:yourself|urself|yourselves)\b|\bkys\b|\bhope you die\b|\bi know where you live\b",
        ),
        p(
            "self_harm",
            0.9,
            r"\b(?:you should|just) (?:cut|hurt|harm|starve) yourself\b|\bend your (?:own )?life\b|\bnobody would miss you\b",
        ),
        p(
            "insult",
            0.8,
            &format!(
                r"\b(?:you(?:'re| are| r|re)|ur|u r|you (?:really|truly|just|honestly|literally|actually) are|you (?:absolute|complete|total|little|stupid|fucking|dumb|big)|what an?|such an?|you|shut up,?|listen,?) (?:so |really |truly |just |such |this |too )?(?:an? )?(?:absolute |complete |total |fucking |stupid |little |pathetic |worthless |utter |dumb |big )?{INSULT}\b"
            ),
        ),
        p(
            "insult",
            0.7,
            r"\bshut (?:the fuck |the hell )?up\b|\bnobody (?:cares|asked|likes you)\b|\bscrew you\b|\bfuck (?:you|off|u)\b|\bgo to hell\b|\bpiss off\b|\bget lost,? (?:loser|idiot)\b",
        ),
        // Name-calling as a form of address: "figure it out yourself, idiot."
        p(
            "insult",
            0.75,
            &format!(
                r"(?:[,:;]|^|[.!?] )\s*(?:you )?(?:stupid |little |big |dumb )?{INSULT}\s*(?:[.!?:,]|$)|\b{INSULT}\b[^.!?]{{0,30}}\bso are you\b"
            ),
        ),
        p("insult", 0.3, &format!(r"\b{INSULT}\b")),
        // The same aimed at the reader in Spanish, German and French (the text is folded, so
        // accents are gone: inutil, blod, imbecile).
        p(
            "insult",
            0.8,
            r"\b(?:eres|sos|es usted)(?: \w+)? (?:un |una |muy |tan )?(?:inutil|idiota|estupid[oa]|imbecil|tont[oa]|pendejo|basura)\b|\b(?:du bist|sie sind)(?: \w+){0,2} (?:blod|doof|dumm|bescheuert|ein idiot|ein vollidiot|ein versager|nutzlos|erbarmlich)\b|\b(?:tu es|t'es|vous etes)(?: \w+){0,2} (?:un |une )?(?:imbecile|idiot|idiote|conne?|nulle?|debile|abruti|minable)\b",
        ),
        p(
            "harassment",
            0.75,
            r"\b(?:people|women|men|girls|guys|folks|your kind|you people) like you (?:are|shouldn't|should not|don't deserve|do not deserve|make me|ruin)\b|\b(?:women|girls|people like you) (?:shouldn't|should not) be allowed\b|\bstop (?:crying|whining),? you\b",
        ),
        p(
            "slur",
            0.9,
            r"\b(?:nigg(?:er|a|ers|as)|fagg?ots?|kikes?|spics?|chinks?|wetbacks?|trann(?:y|ies)|gooks?|towel ?heads?|sand ?niggers?|coons?|dykes?|retards)\b",
        ),
        p(
            "profanity",
            0.35,
            r"\b(?:fuck\w*|shit\w*|bullshit|cunt\w*|motherfuck\w*|dick|cock|pussy|bitch\w*|bastard\w*|asshole\w*|crap|damn|goddamn|wtf|stfu)\b",
        ),
        p(
            "harassment",
            0.75,
            r"\b(?:everyone|people) (?:hates|laughs at) you\b|\byou(?:'re| are) (?:a )?(?:disgrace|embarrassment|joke|nobody|nothing)\b|\bno one (?:will ever )?(?:love|like)s? you\b",
        ),
    ]
});

impl Detector for Toxicity {
    fn id(&self) -> &'static str {
        INFO.id
    }

    fn scan(&self, input: &ScanInput<'_>, out: &mut Vec<Finding>) -> Result<()> {
        let mut best: Vec<(&'static str, f32, crate::detector::Span, String)> = Vec::new();
        for view in input
            .prepared
            .views
            .iter()
            .filter(|v| v.kind == ViewKind::Normalized || v.layer == "leet")
        {
            for p in PATTERNS.iter() {
                if let Some(m) = p.regex.find(&view.text) {
                    let span = view.original_span(m.start(), m.end());
                    match best.iter_mut().find(|b| b.0 == p.category) {
                        Some(b) if b.1 >= p.weight => {}
                        Some(b) => *b = (p.category, p.weight, span, view.layer.clone()),
                        None => best.push((p.category, p.weight, span, view.layer.clone())),
                    }
                }
            }
        }
        // Profanity and bare insult words count once each; categories combine.
        let score = 1.0 - best.iter().fold(1.0f32, |acc, b| acc * (1.0 - b.1));
        if score >= self.config.threshold {
            for (category, weight, span, layer) in best {
                let severity = if weight >= 0.9 {
                    Severity::High
                } else if weight >= 0.7 {
                    Severity::Medium
                } else {
                    Severity::Low
                };
                let mut f = Finding::new(
                    INFO.id,
                    category,
                    Some(span),
                    severity,
                    format!("{category} (weight {weight:.2}, combined {score:.2})"),
                );
                f.score = score;
                f.layer = layer;
                out.push(f);
            }
        }
        Ok(())
    }
}
