//! The cocoon worker: serves requests from proxies through an inference engine and signs a receipt per response.
