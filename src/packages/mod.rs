//! Packages: names, publishing and unpublishing, tags, the documents npm reads (packuments),
//! tarballs, search, download counts and blocks.

pub mod blocks;
pub mod documents;
pub mod downloads;
pub mod names;
pub mod packument;
pub mod pages;
pub mod publish;
pub mod search;
pub mod tags;
pub mod tarball;
pub mod unpublish;
