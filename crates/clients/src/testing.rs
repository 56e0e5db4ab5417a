//! Test support for HTTP clients.

/// A mock that takes any request no other mock takes, answers 599, and fails the test when the
/// server is dropped: nothing may reach a mocked API unexpectedly.
pub async fn fail_on_unexpected(server: &wiremock::MockServer) {
    wiremock::Mock::given(wiremock::matchers::any())
        .respond_with(wiremock::ResponseTemplate::new(599).set_body_string("unexpected request"))
        .with_priority(255)
        .expect(0)
        .named("unexpected request")
        .mount(server)
        .await;
}
