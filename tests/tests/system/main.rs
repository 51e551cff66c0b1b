//! The system tests, one binary: linked once (the SDK and devstack are big, and two cores link
//! slowly), each module a part of the system. Every test provisions its own stack, so tests
//! share nothing but the emulator.

mod asyncapi;
mod auth;
mod bench;
mod browser;
mod checkout;
mod contracts;
mod dead_letters;
mod emulator;
mod event_routing;
mod faults;
mod iam;
mod idempotency;
mod layout;
mod local_stack;
mod notifications;
mod order_lifecycle;
mod oversell;
mod poison;
mod provisioning;
mod readme_walkthrough;
mod replay;
mod samples;
mod schemathesis;
mod security;
mod sellers;
mod sessions;
mod shipments;
mod stripe;
mod webhooks;
