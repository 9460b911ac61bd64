//! The caller's identity, from the `Authorization` header (none: anonymous).

use std::sync::Arc;

use registry_core::auth::{authenticate, Identity};
use warp::{Filter, Rejection};

use crate::state::AppState;

pub fn identity(
    state: AppState,
) -> impl Filter<Extract = (Option<Arc<Identity>>,), Error = Rejection> + Clone {
    warp::header::optional::<String>("authorization").and_then(move |header: Option<String>| {
        let state = state.clone();
        async move {
            match header {
                None => Ok(None),
                Some(header) => state
                    .run(move |state| {
                        let registry = state.registry();
                        authenticate(&registry.store, &registry.credentials, Some(&header))
                    })
                    .await
                    .map(|identity| identity.map(Arc::new)),
            }
        }
    })
}
