//! Picking the rule for a request: the routing step, run after the path is
//! normalised and before any token is looked at.
//!
//! A [`RuleSet`] is compiled once per snapshot from the settings. Each
//! request asks it for the first rule that covers its method and normalised
//! path, and the rule's [`Target`] says what happens next: forward to the
//! account store, forward without a token, or demand a token (and perhaps a
//! role). A request no configured rule covers falls to a protected default,
//! so forgetting a rule can lock a route but never opens one.

use std::sync::Arc;

use http::Method;

use crate::config::{AccessMode, AccountStoreSettings, EnforceMode, PathMatch, RuleSettings};

/// Names the rules built from the account store's routes, in logs and metrics.
const ACCOUNT_STORE_RULE: &str = "account_store";

/// Names the catch-all rule that ends every rule set.
const DEFAULT_RULE: &str = "default";

/// Says where a request goes once a rule covers it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// Forward to the account store without a token check (login, refresh).
    AccountStore,
    /// Forward to the upstream without a token check.
    Public,
    /// Forward to the upstream only with a valid token.
    Protected {
        /// Roles of which the caller needs at least one; empty means any
        /// valid token will do.
        roles: Vec<String>,
    },
}

/// Covers a set of requests by path and method, and names their target.
#[derive(Clone, Debug)]
pub struct Rule {
    /// The rule's name, used as the `rule` label in logs and metrics.
    pub name: Arc<str>,
    /// Which normalised paths the rule covers. A prefix is a plain string
    /// prefix, so `/api` covers `/apix` too; a directory rule ends in `/`.
    pub path: PathMatch,
    /// The methods the rule covers; `None` means all of them, OPTIONS too.
    pub methods: Option<Vec<Method>>,
    /// Where covered requests go.
    pub target: Target,
    /// Whether token refusals are enforced; `None` follows the top-level
    /// mode, as the account store routes and the default always do.
    pub mode: Option<EnforceMode>,
}

impl Rule {
    /// Checks whether a caller holding `roles` satisfies this rule.
    ///
    /// True when the rule requires no role or the caller holds any one of
    /// them, compared exactly. Only protected rules require roles, so for the
    /// other targets this is always true; the caller decides whether a token
    /// is needed at all from [`Rule::target`].
    pub fn has_role(&self, roles: &[impl AsRef<str>]) -> bool {
        let Target::Protected { roles: required } = &self.target else {
            return true;
        };
        required.is_empty()
            || required
                .iter()
                .any(|want| roles.iter().any(|held| held.as_ref() == want))
    }

    /// Returns the rule's mode, or `default` (the top-level mode) when the
    /// rule sets none.
    pub fn mode_or(&self, default: EnforceMode) -> EnforceMode {
        self.mode.unwrap_or(default)
    }

    /// Builds a rule from its settings, turning the access mode into a target.
    fn from_settings(settings: &RuleSettings) -> Self {
        let target = match &settings.access {
            AccessMode::Public => Target::Public,
            AccessMode::Protected { roles } => Target::Protected {
                roles: roles.clone(),
            },
        };
        Self {
            name: Arc::clone(&settings.name),
            path: settings.path.clone(),
            methods: settings.methods.clone(),
            target,
            mode: settings.mode,
        }
    }

    /// Checks whether this rule covers a request, without allocating.
    ///
    /// A rule that requires a role also covers the spellings of its path
    /// that lenient services route to the same handler: any ASCII case
    /// (`/Admin/` for `/admin/` on a case-folding server) and, for an exact
    /// path, one trailing `/` (`/secret/` for `/secret`, as Express and
    /// Spring do). Widening a restriction can only lock more out; other
    /// rules, which grant access, match exactly as written, so they never
    /// open more than they name.
    fn is_match(&self, method: &Method, path: &str) -> bool {
        let lenient = self.requires_role();
        let path_matches = match &self.path {
            PathMatch::Exact(exact) => covers_exact(exact, path, lenient),
            PathMatch::Prefix(prefix) => covers_prefix(prefix, path, lenient),
        };
        path_matches
            && self
                .methods
                .as_ref()
                .is_none_or(|methods| methods.iter().any(|m| covers_method(m, method)))
    }

    /// Says whether the rule demands at least one role.
    fn requires_role(&self) -> bool {
        matches!(&self.target, Target::Protected { roles } if !roles.is_empty())
    }
}

/// Compares two path pieces exactly, or with `lenient` ignoring ASCII case.
fn same(a: &str, b: &str, lenient: bool) -> bool {
    if lenient {
        a.eq_ignore_ascii_case(b)
    } else {
        a == b
    }
}

/// An exact path covers itself; with `lenient`, in any case and with one
/// trailing `/` added.
fn covers_exact(exact: &str, path: &str, lenient: bool) -> bool {
    same(exact, path, lenient)
        || (lenient
            && !exact.ends_with('/')
            && path
                .strip_suffix('/')
                .is_some_and(|bare| same(exact, bare, true)))
}

/// A prefix covers the paths that start with it; a prefix that ends in `/`
/// also covers the directory itself, so `/admin/` guards `/admin` too
/// rather than leaving the directory's index to the default rule. With
/// `lenient`, case is ignored.
fn covers_prefix(prefix: &str, path: &str, lenient: bool) -> bool {
    let starts = path
        .get(..prefix.len())
        .is_some_and(|head| same(head, prefix, lenient));
    starts
        || prefix
            .strip_suffix('/')
            .is_some_and(|directory| !directory.is_empty() && same(path, directory, lenient))
}

/// Says whether a rule's method covers the request's.
///
/// Methods are compared without case: on the wire `delete` is not
/// `DELETE`, but the frameworks behind tollgate (Django, Flask, ASP.NET
/// Core) treat them alike, so a case-sensitive match would let a lowercase
/// method slip past a rule meant for it. `GET` covers `HEAD` for the same
/// reason: frameworks answer HEAD with the GET handler.
fn covers_method(rule: &Method, request: &Method) -> bool {
    let wanted = rule.as_str();
    let sent = request.as_str();
    wanted.eq_ignore_ascii_case(sent)
        || (wanted.eq_ignore_ascii_case("GET") && sent.eq_ignore_ascii_case("HEAD"))
}

/// Holds the rules of one snapshot in match order; the last is always the
/// protected default.
#[derive(Clone, Debug)]
pub struct RuleSet {
    rules: Vec<Rule>,
}

impl RuleSet {
    /// Compiles the rules: account store routes first, then the configured
    /// rules in file order, then the default.
    ///
    /// Account store routes (exact paths, named `account_store`) come first
    /// so that a broad configured rule cannot send login traffic to the
    /// upstream by mistake. The default, named `default`, covers every path
    /// and method and is protected with no roles.
    pub fn new(rules: &[RuleSettings], account_store: Option<&AccountStoreSettings>) -> Self {
        let account_store_name: Arc<str> = Arc::from(ACCOUNT_STORE_RULE);
        let store_routes = account_store
            .into_iter()
            .flat_map(|store| store.routes.iter())
            .map(|route| Rule {
                name: Arc::clone(&account_store_name),
                path: PathMatch::Exact(route.clone()),
                methods: None,
                target: Target::AccountStore,
                mode: None,
            });
        let configured = rules.iter().map(Rule::from_settings);
        let default = Rule {
            name: Arc::from(DEFAULT_RULE),
            path: PathMatch::Prefix("/".to_owned()),
            methods: None,
            target: Target::Protected { roles: Vec::new() },
            mode: None,
        };

        let rules = store_routes
            .chain(configured)
            .chain(std::iter::once(default))
            .collect();
        Self { rules }
    }

    /// Returns the first rule covering the method and the normalised path.
    ///
    /// Never fails: a request nothing else covers gets the default rule,
    /// even if the path was not normalised and so matches no prefix at all.
    pub fn find(&self, method: &Method, normalized_path: &str) -> &Rule {
        self.find_at(method, normalized_path).1
    }

    /// Picks the rule like [`RuleSet::find`], with its position in
    /// [`RuleSet::rules`] (which indexes the per-rule metric handles).
    pub fn find_at(&self, method: &Method, normalized_path: &str) -> (usize, &Rule) {
        let last = self.rules.len() - 1;
        self.rules[..last]
            .iter()
            .enumerate()
            .find(|(_, rule)| rule.is_match(method, normalized_path))
            .unwrap_or((last, &self.rules[last]))
    }

    /// Returns every rule in match order, the default last.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }
}

#[cfg(test)]
mod tests;

/// Describes a rule in one line, for `tollgate check`.
pub fn describe(rule: &Rule) -> String {
    let path = match &rule.path {
        PathMatch::Exact(path) => format!("path {path}"),
        PathMatch::Prefix(prefix) => format!("prefix {prefix}"),
    };
    let methods = match &rule.methods {
        Some(methods) => {
            let names: Vec<&str> = methods.iter().map(Method::as_str).collect();
            format!(" [{}]", names.join(","))
        }
        None => String::new(),
    };
    let target = match &rule.target {
        Target::AccountStore => "account store, no token check".to_owned(),
        Target::Public => "public".to_owned(),
        Target::Protected { roles } if roles.is_empty() => "valid token".to_owned(),
        Target::Protected { roles } => format!("valid token with a role in [{}]", roles.join(",")),
    };
    format!("{} ({path}{methods}): {target}", rule.name)
}
