*** Settings ***
Documentation       The REST API (protocol §8): the error shape for every bad request, who may
...                 call what, fixtures, messages, presence, health and metrics.

Resource            ../../resources/conformance.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Teardown       Close All Devices


*** Variables ***
@{METRICS}      ccs_connections    ccs_messages_total    ccs_duplicate_sends_total
...             ccs_send_latency_seconds    ccs_deliveries_total    ccs_notifications_total
...             ccs_gaps_repaired_total    ccs_repair_sweeps_total    ccs_presence_repairs_total
...             ccs_listener_connected
...             ccs_listener_reconnects_total
...             ccs_errors_total    ccs_slow_consumer_closes_total    ccs_presence_changes_total
...             ccs_receipts_total


*** Test Cases ***
Bad Requests Get The Error Shape And Their Status
    [Documentation]    Unknown path 404, wrong method 405 (with ``Allow``), not JSON or not an
    ...    object 400, nested too deep 400, too large 413: always ``{code, message, retryable}``.
    [Tags]    spec:8.1-b    spec:6-a    P16
    ${base}    Server Base Url
    ${admin}    Mint Token    alice    admin=${True}
    ${reply}    HTTP Request    ${base}    GET    /v1/no/such/path    token=${admin}
    Error Reply Should Be    ${reply}    404    not_found
    ${reply}    HTTP Request    ${base}    PUT    /v1/users    {}    token=${admin}
    Error Reply Should Be    ${reply}    405    method_not_allowed
    Dictionary Should Contain Key    ${reply}[headers]    Allow
    ${reply}    HTTP Request    ${base}    POST    /v1/users    {"user_id":    token=${admin}
    Error Reply Should Be    ${reply}    400    invalid_json
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ["a"]    token=${admin}
    Error Reply Should Be    ${reply}    400    invalid_json
    ${deep}    Evaluate    '{"user_id": ' + "[" * 5000 + "]" * 5000 + "}"
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${deep}    token=${admin}
    Error Reply Should Be    ${reply}    400    bad_request
    ${huge}    Evaluate    '{"user_id": "' + "x" * (3 * 1024 * 1024) + '"}'
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${huge}    token=${admin}
    Error Reply Should Be    ${reply}    413    too_large

A Request Body Must Be Declared As JSON
    [Documentation]    ``text/plain`` or no content type: 415; ``application/json; charset=utf-8``
    ...    is accepted.
    [Tags]    spec:8.1-a
    ${base}    Server Base Url
    ${admin}    Mint Token    alice    admin=${True}
    ${id}    Unique Name    ctype
    VAR    ${body}    {"user_id": "${id}"}
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}    content_type=text/plain
    ...    token=${admin}
    Error Reply Should Be    ${reply}    415    unsupported_media_type
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}    content_type=${None}
    ...    token=${admin}
    Error Reply Should Be    ${reply}    415    unsupported_media_type
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}
    ...    content_type=application/json; charset=utf-8    token=${admin}
    Should Be Equal As Integers    ${reply}[status]    ${201}    ${reply}[text]

REST Fields Follow The WebSocket Rules
    [Documentation]    A bad id, a history limit of 0, an empty ``client_msg_id`` and a body over
    ...    the limit are refused as on the WebSocket.
    [Tags]    spec:8.1-c    spec:1-a
    ${base}    Server Base Url
    ${admin}    Mint Token    alice    admin=${True}
    ${alice}    Mint Token    alice    alice-phone
    ${room}    Conversation Id    team-room
    ${reply}    HTTP Request    ${base}    POST    /v1/users    {"user_id": "has space"}    token=${admin}
    Error Reply Should Be    ${reply}    400    bad_request
    ${reply}    HTTP Request    ${base}    GET    /v1/conversations/${room}/messages?limit=0
    ...    content_type=${None}    token=${alice}
    Error Reply Should Be    ${reply}    400    bad_request
    ${reply}    HTTP Request    ${base}    POST    /v1/conversations/${room}/messages
    ...    {"client_msg_id": "", "body": 1}    token=${alice}
    Error Reply Should Be    ${reply}    400    bad_request
    ${big}    Evaluate    '{"client_msg_id": "big-1", "body": "' + "x" * 70000 + '"}'
    ${reply}    HTTP Request    ${base}    POST    /v1/conversations/${room}/messages    ${big}
    ...    token=${alice}
    Error Reply Should Be    ${reply}    413    too_large

Authentication Errors Over REST
    [Documentation]    No header 401 ``not_authenticated``; garbage 401 ``auth_failed``; expired
    ...    401 ``token_expired``; a device token on an admin endpoint 403 ``forbidden``.
    [Tags]    spec:8.1-d    P15
    ${base}    Server Base Url
    VAR    ${body}    {"user_id": "nobody-new"}
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}
    Error Reply Should Be    ${reply}    401    not_authenticated
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}    token=not.a.token
    Error Reply Should Be    ${reply}    401    auth_failed
    ${expired}    Mint Token    alice    admin=${True}    ttl=${-30}
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}    token=${expired}
    Error Reply Should Be    ${reply}    401    token_expired
    ${device}    Mint Token    alice    alice-phone
    ${reply}    HTTP Request    ${base}    POST    /v1/users    ${body}    token=${device}
    Error Reply Should Be    ${reply}    403    forbidden

Each Endpoint Refuses Callers Outside Its Audience
    [Documentation]    carol is no member: history, status and posting are ``forbidden``; bob may
    ...    not edit alice's message.
    [Tags]    spec:8.2-a    P15
    ${base}    Server Base Url
    ${room}    Conversation Id    team-room
    ${message}    Post Message    alice-phone    team-room    from alice
    ${carol}    Mint Token    carol    carol-phone
    ${bob}    Mint Token    bob    bob-tablet
    ${reply}    HTTP Request    ${base}    GET    /v1/conversations/${room}/messages
    ...    content_type=${None}    token=${carol}
    Error Reply Should Be    ${reply}    403    forbidden
    ${reply}    HTTP Request    ${base}    GET    /v1/conversations/${room}/messages/1/status
    ...    content_type=${None}    token=${carol}
    Error Reply Should Be    ${reply}    403    forbidden
    ${reply}    HTTP Request    ${base}    POST    /v1/conversations/${room}/messages
    ...    {"client_msg_id": "carol-1", "body": 1}    token=${carol}
    Error Reply Should Be    ${reply}    403    forbidden
    ${reply}    HTTP Request    ${base}    PATCH    /v1/conversations/${room}/messages/${message}[seq]
    ...    {"expected_version": 1, "body": "bob's now"}    token=${bob}
    Error Reply Should Be    ${reply}    403    forbidden

The OpenAPI Description Is Public And Names The Protocol Version
    [Documentation]    ``GET /openapi.json`` without a token: OpenAPI 3.1, version 1.1.
    [Tags]    spec:8.2-b
    ${base}    Server Base Url
    ${reply}    HTTP Request    ${base}    GET    /openapi.json    content_type=${None}
    Should Be Equal As Integers    ${reply}[status]    ${200}
    Should Start With    ${reply}[json][openapi]    3.1
    Should Be Equal    ${reply}[json][info][version]    1.1
    Dictionary Should Contain Key    ${reply}[json][paths]    /v1/users

Fixtures That Exist Or Reference Nothing
    [Documentation]    Existing user, device (of any user), conversation or membership: 409
    ...    ``conflict``; an unknown user or conversation: 404 ``not_found``.
    [Tags]    spec:8.3-a    spec:8.3-b
    ${base}    Server Base Url
    ${admin}    Mint Token    alice    admin=${True}
    ${alice}    User Id    alice
    ${bob}    User Id    bob
    ${carol}    User Id    carol
    ${phone}    Device Id    alice-phone
    ${room}    Conversation Id    team-room
    ${ghost}    Unique Name    ghost
    FOR    ${path}    ${body}    IN
    ...    /v1/users    {"user_id": "${alice}"}
    ...    /v1/users/${bob}/devices    {"device_id": "${phone}"}
    ...    /v1/conversations    {"conversation_id": "${room}", "members": []}
    ...    /v1/conversations/${room}/members    {"user_id": "${bob}"}
        ${reply}    HTTP Request    ${base}    POST    ${path}    ${body}    token=${admin}
        Error Reply Should Be    ${reply}    409    conflict
    END
    FOR    ${path}    ${body}    IN
    ...    /v1/users/${ghost}/devices    {"device_id": "${ghost}-d"}
    ...    /v1/conversations    {"conversation_id": "${ghost}-c", "members": ["${ghost}"]}
    ...    /v1/conversations/${ghost}/members    {"user_id": "${alice}"}
        ${reply}    HTTP Request    ${base}    POST    ${path}    ${body}    token=${admin}
        Error Reply Should Be    ${reply}    404    not_found
    END
    ${reply}    HTTP Request    ${base}    DELETE    /v1/conversations/${room}/members/${carol}
    ...    content_type=${None}    token=${admin}
    Error Reply Should Be    ${reply}    404    not_found

A Retried POST Of A Message Answers 200 With The Original
    [Documentation]    The same key and body posted twice: 201 with ``duplicate: false``, then
    ...    200 with the original seq and ``duplicate: true``; the same key with another body: 409
    ...    ``idempotency_conflict``. One row is stored.
    [Tags]    spec:8.4-a    P2
    ${base}    Server Base Url
    ${alice}    Mint Token    alice    alice-phone
    ${room}    Conversation Id    team-room
    ${key}    Unique Name    rest-retry
    VAR    ${path}    /v1/conversations/${room}/messages
    VAR    ${body}    {"client_msg_id": "${key}", "body": {"text": "once"}}
    ${first}    HTTP Request    ${base}    POST    ${path}    ${body}    token=${alice}
    Should Be Equal As Integers    ${first}[status]    ${201}    ${first}[text]
    Should Be Equal    ${first}[json][duplicate]    ${False}
    ${again}    HTTP Request    ${base}    POST    ${path}    ${body}    token=${alice}
    Should Be Equal As Integers    ${again}[status]    ${200}
    ...    expected 200 for an idempotent retry, got ${again}[status]: ${again}[text]
    Should Be Equal    ${again}[json][duplicate]    ${True}
    Should Be Equal    ${again}[json][seq]    ${first}[json][seq]
    ${other}    HTTP Request    ${base}    POST    ${path}
    ...    {"client_msg_id": "${key}", "body": {"text": "other"}}    token=${alice}
    Error Reply Should Be    ${other}    409    idempotency_conflict
    Stored Value Should Be    SELECT count(*) FROM messages WHERE client_msg_id = %s    1    ${key}
    ...    what=expected the retried key stored once

Edits And Deletes Over REST Follow The Version Rules
    [Documentation]    ``PATCH`` with the current version: 200 and the next version; a stale one:
    ...    409 ``conflict`` with ``current``; ``deleted: true`` makes a tombstone.
    [Tags]    spec:8.4-b    P11
    ${base}    Server Base Url
    ${alice}    Mint Token    alice    alice-phone
    ${room}    Conversation Id    team-room
    ${message}    Post Message    alice-phone    team-room    draft
    VAR    ${path}    /v1/conversations/${room}/messages/${message}[seq]
    ${reply}    HTTP Request    ${base}    PATCH    ${path}    {"expected_version": 1, "body": "final"}
    ...    token=${alice}
    Should Be Equal As Integers    ${reply}[status]    ${200}    ${reply}[text]
    Should Be Equal As Integers    ${reply}[json][version]    ${2}
    ${reply}    HTTP Request    ${base}    PATCH    ${path}    {"expected_version": 1, "body": "stale"}
    ...    token=${alice}
    Error Reply Should Be    ${reply}    409    conflict
    Should Be Equal    ${reply}[json][current][body]    final
    ${reply}    HTTP Request    ${base}    PATCH    ${path}    {"expected_version": 2, "deleted": true}
    ...    token=${alice}
    Should Be Equal As Integers    ${reply}[json][version]    ${3}
    ${room_id}    Conversation Id    team-room
    Check Query Result    SELECT deleted FROM messages WHERE conversation_id = '${room_id}' AND seq = ${message}[seq]
    ...    ==    ${True}    alias=${DB}

Presence Over REST Is Visible Only Within Shared Conversations
    [Documentation]    alice is online. carol (no shared conversation) gets what an unknown user
    ...    gets; bob sees her online; an admin sees her devices with their node.
    [Tags]    spec:8.4-e    P10    P15
    Devices Are Connected    alice-phone
    ${base}    Server Base Url
    ${alice}    User Id    alice
    ${carol}    Mint Token    carol    carol-phone
    ${bob}    Mint Token    bob    bob-tablet
    ${admin}    Mint Token    carol    admin=${True}
    ${stranger}    HTTP Request    ${base}    GET    /v1/users/${alice}/presence    content_type=${None}
    ...    token=${carol}
    ${unknown}    HTTP Request    ${base}    GET    /v1/users/nobody-at-all-0/presence
    ...    content_type=${None}    token=${carol}
    Should Be Equal As Integers    ${stranger}[status]    ${200}
    Should Be Equal    ${stranger}[json][status]    offline
    Should Be Empty    ${stranger}[json][devices]
    Should Be Equal    ${stranger}[json][devices]    ${unknown}[json][devices]
    ${member}    HTTP Request    ${base}    GET    /v1/users/${alice}/presence    content_type=${None}
    ...    token=${bob}
    Should Be Equal    ${member}[json][status]    online
    ${seen}    HTTP Request    ${base}    GET    /v1/users/${alice}/presence    content_type=${None}
    ...    token=${admin}
    Should Be Equal    ${seen}[json][status]    online
    Dictionary Should Contain Key    ${seen}[json][devices][0]    node_id

Health Is Public And Reports Every Component
    [Documentation]    ``GET /health`` without a token: 200 and ``status: ok`` while the database
    ...    answers and the listener listens; every documented field with a documented value.
    [Tags]    spec:8.5-a    spec:8.5-b    P18
    Devices Are Connected    alice-phone
    ${base}    Server Base Url
    ${reply}    HTTP Request    ${base}    GET    /health    content_type=${None}
    Should Be Equal As Integers    ${reply}[status]    ${200}
    VAR    ${health}    ${reply}[json]
    Should Be Equal    ${health}[status]    ok
    Should Be Equal    ${health}[database]    ok
    Should Be Equal    ${health}[listener]    listening
    Should Contain Any    ${health}[redis]    ok    unavailable    disabled
    Should Not Be Empty    ${health}[node_id]
    Should Be True    ${health}[connections] >= 1

The Connections Gauge Falls As Sessions End
    [Documentation]    ``ccs_connections`` counts the sessions open now: when two devices
    ...    disconnect it falls by two (a gauge that only grows would flatter every dashboard).
    [Tags]    spec:8.6-a    P18
    Given Devices Are Connected    alice-phone    bob-tablet
    ${open}    Server Metric    ccs_connections
    When "alice-phone" Disconnects
    And "bob-tablet" Disconnects
    Then Server Metric Should Fall To    ccs_connections    ${open - 2}

Metrics Are Public And Name Every Documented Metric
    [Documentation]    ``GET /metrics`` without a token, Prometheus text with each metric of §8.6.
    [Tags]    spec:8.6-a    P18
    ${base}    Server Base Url
    ${reply}    HTTP Request    ${base}    GET    /metrics    content_type=${None}
    Should Be Equal As Integers    ${reply}[status]    ${200}
    FOR    ${metric}    IN    @{METRICS}
        Should Match Regexp    ${reply}[text]    (?m)^# TYPE ${metric}    no ${metric} in /metrics
    END
