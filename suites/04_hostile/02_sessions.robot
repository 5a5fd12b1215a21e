*** Settings ***
Documentation       The session around authentication: nothing before ``hello`` (4500), no
...                 ``hello`` in time (4502), a token that expires while connected (4003), and a
...                 malformed ``resume`` that fails the whole hello closed (P9, P15).

Resource            ../../resources/hostile.resource

Test Tags           P15
Suite Setup         The Hostile Arena Is Set Up
Suite Teardown      The Hostile Arena Is Torn Down
Test Setup          Snapshot Stored State
Test Teardown       The Case Left No Trace


*** Test Cases ***
A Command Before Hello Is Refused With Close 4500
    [Documentation]    Any frame before a successful hello: ``not_authenticated``, close 4500.
    [Tags]    spec:3.1-b
    Open Raw Connection    early    token_in=none
    Raw Send Text    early    {"type":"send","ref":"s1","conversation_id":"$ARENA","client_msg_id":"x","body":1}
    ${how}    Raw Close Code    early
    Should Be Equal    ${how}    not_authenticated 4500
    Nothing Was Stored

Silence After The Upgrade Is Closed With 4502
    [Documentation]    No hello within CCS_AUTH_TIMEOUT_MS (1 s here): close 4502.
    [Tags]    spec:3.1-d
    The Server Configuration Of This Suite Is Required
    Open Raw Connection    silent    token_in=none
    ${how}    Raw Close Code    silent    timeout=5s
    Should Be Equal    ${how}    - 4502

A Token Expiring Mid-Connection Closes The Session With 4003
    [Documentation]    The session ends when its token does: ``token_expired`` then close 4003.
    [Tags]    spec:3.4-b
    ${token}    Hostile Token    valid    eve-laptop    ttl=2s
    ${status}    Open Raw Connection    expiring    ${token}
    Should Be Equal As Integers    ${status}    ${101}
    ${welcome}    Raw Next Reply    expiring
    Should Be Equal    ${welcome}[type]    welcome
    ${how}    Raw Close Code    expiring    timeout=8s
    Should Be Equal    ${how}    token_expired 4003
    Nothing Was Stored

A Second Hello On An Open Session Is A Bad Request
    [Documentation]    ``hello`` is only the first frame; later it is ``bad_request`` in-band.
    [Tags]    spec:3.1-j    spec:3.4-d
    Eve Is Connected Raw
    Raw Send Text    eve    {"type":"hello","ref":"again","token":"x"}
    Raw Error Should Be    eve    bad_request
    Raw Connection Should Still Work    eve
    Nothing Was Stored
