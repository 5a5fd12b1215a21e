*** Settings ***
Documentation       The handshake and the rules every command follows (protocol §2, §3, §4.1).

Resource            ../../resources/conformance.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Teardown       Run Keywords    Close All Devices    AND    Close Raw Connections


*** Test Cases ***
The Welcome Echoes The Ref And Describes The Session
    [Documentation]    A hello with the token in the frame (none on the upgrade) gets a welcome
    ...    with every documented field and an entry per conversation of the user.
    [Tags]    spec:3-b    spec:3.1-a
    ${welcome}    Connect Device    alice-phone
    ${alice}    User Id    alice
    Should Be Equal    ${welcome}[protocol]    1.1
    Should Be Equal    ${welcome}[user_id]    ${alice}
    FOR    ${field}    IN    ref    node_id    session_id    device_id    heartbeat_interval_ms
        Dictionary Should Contain Key    ${welcome}    ${field}
    END
    FOR    ${limit}    IN    max_frame_bytes    max_body_bytes    send_rate_per_s    history_limit_max
        Dictionary Should Contain Key    ${welcome}[limits]    ${limit}
    END
    ${room}    Conversation Id    team-room
    Dictionary Should Contain Key    ${welcome}[conversations]    ${room}

Frames Before Hello That Are Not Commands Close The Connection With 4500
    [Documentation]    Not JSON: ``invalid_json``; binary: ``binary_not_supported``; no valid
    ...    ref: ``bad_request``; each followed by close 4500.
    [Tags]    spec:3.1-c    spec:7-a
    Open Raw Connection    text    token_in=none
    Raw Send Text    text    this is not json
    Raw Connection "text" Should Close With "invalid_json 4500"
    Open Raw Connection    binary    token_in=none
    Raw Send Frame    binary    binary
    Raw Connection "binary" Should Close With "binary_not_supported 4500"
    Open Raw Connection    noref    token_in=none
    Raw Send Text    noref    {"type":"hello"}
    Raw Connection "noref" Should Close With "bad_request 4500"

A Token In Hello Wins Over The Token On The Upgrade
    [Documentation]    Upgrade with alice's token, hello with bob's: the session is bob's device.
    [Tags]    spec:3.1-f
    ${alice}    Mint Token    alice    alice-phone
    ${bob}    Mint Token    bob    bob-tablet
    ${status}    Open Raw Connection    both    ${alice}    token_in=header
    Should Be Equal As Integers    ${status}    ${101}
    Raw Send Text    both    {"type":"hello","ref":"h","token":"${bob}"}
    ${welcome}    Raw Next Reply    both
    Should Be Equal    ${welcome}[type]    welcome
    ${tablet}    Device Id    bob-tablet
    Should Be Equal    ${welcome}[device_id]    ${tablet}

An Application Ping Gets Exactly One Ack Echoing Its Ref
    [Documentation]    Every command gets one reply echoing its ref; ``ping`` gets ``ack`` for ping.
    [Tags]    spec:3.3-b    spec:4.1-a
    Connect Device    alice-phone
    ${reply}    Send Command    alice-phone    ping    ref=ping-once
    Reply Should Be An Ack For "ping"    ${reply}
    Should Be Equal    ${reply}[ref]    ping-once
    # a second command's reply comes after any further reply to the first (one ordered socket)
    Send Command    alice-phone    ping    ref=ping-after
    ${replies}    Received Frames    alice-phone    *    ref=ping-once
    Length Should Be    ${replies}    1    the ping got ${replies}

Replies Come In Command Order
    [Documentation]    Twenty commands of four kinds sent back to back without reading: the
    ...    replies come one per command, in the order the commands were sent.
    [Tags]    spec:4.1-b    spec:4.1-a
    Open Authenticated Raw Connection    ordered    alice-phone
    ${room}    Conversation Id    team-room
    FOR    ${n}    IN RANGE    20
        ${kind}    Evaluate    ["ping", "subscribe", "history", "presence"][${n} % 4]
        Raw Send Text    ordered
        ...    {"type":"${kind}","ref":"r${n}","conversation_id":"${room}","status":"online"}
    END
    FOR    ${n}    IN RANGE    20
        ${reply}    Raw Next Reply    ordered
        Should Be Equal    ${reply}[ref]    r${n}    reply ${n} out of order: ${reply}
    END

An Error Echoes The Ref Whenever The Ref Can Be Read
    [Documentation]    The rest of the frame is refused (too deep, not finite, a wrong field),
    ...    yet the error carries the frame's ref, and the connection stays open.
    [Tags]    spec:4.1-d    spec:3.4-d
    Open Authenticated Raw Connection    refs    alice-phone
    ${room}    Conversation Id    team-room
    ${deep}    Evaluate    "[" * 5000 + "]" * 5000
    Raw Send Text    refs
    ...    {"type":"send","ref":"deep-1","conversation_id":"${room}","client_msg_id":"d","body":${deep}}
    ${error}    Raw Error Should Be    refs    bad_request
    Should Be Equal    ${error}[ref]    deep-1
    Raw Send Text    refs
    ...    {"type":"send","ref":"nan-1","conversation_id":"${room}","client_msg_id":"n","body":NaN}
    ${error}    Raw Error Should Be    refs    bad_request
    Should Be Equal    ${error}[ref]    nan-1
    Raw Send Text    refs    {"type":"receipt","ref":"kind-1","conversation_id":"${room}","kind":"x","seq":1}
    ${error}    Raw Error Should Be    refs    bad_request
    Should Be Equal    ${error}[ref]    kind-1
    Raw Connection Should Still Work    refs

Fields A Command Does Not Define Are Ignored
    [Documentation]    Unknown fields change nothing: the command is executed as without them.
    [Tags]    spec:4.1-e
    Connect Device    alice-phone
    ${reply}    Send Command    alice-phone    ping    colour=blue    nested={"a": 1}
    Reply Should Be An Ack For "ping"    ${reply}
    ${reply}    Send Command    alice-phone    send    conversation_id=team-room
    ...    client_msg_id=extra-1    body=hi    priority=${9}
    Reply Should Be An Ack For "send"    ${reply}

One Device May Hold Two Connections That Both Receive Everything
    [Documentation]    Two sessions of alice-phone at once: both get bob's message.
    [Tags]    spec:3.4-a
    ${alice}    User Id    alice
    ${phone}    Device Id    alice-phone
    Connect Device    alice-phone
    Connect Device    alice-phone-again    user_id=${alice}    device_id=${phone}
    Connect Device    bob-tablet
    ${seq}    "bob-tablet" Sends "to both sessions" To "team-room" And Gets Seq
    Wait For Message    alice-phone    team-room    ${seq}
    Wait For Message    alice-phone-again    team-room    ${seq}

A Token Without A Device Cannot Act As A Device
    [Documentation]    An admin token without ``dev``: no WebSocket session, no REST send.
    [Tags]    spec:2-c    spec:8.2-a
    ${admin}    Mint Token    alice    admin=${True}
    ${how}    Connect Device Expecting Failure    alice-phone    token=${admin}
    Should Start With    ${how}    auth_failed
    ${room}    Conversation Id    team-room
    ${base}    Server Base Url
    ${reply}    HTTP Request    ${base}    POST    /v1/conversations/${room}/messages
    ...    {"client_msg_id":"admin-1","body":1}    token=${admin}
    Error Reply Should Be    ${reply}    401    auth_failed

A Revoked Device Is Refused At Its Next Authentication
    [Documentation]    ``devices.revoked`` set to true: the device's next hello gets
    ...    ``auth_failed`` and close 4501, its token on the upgrade HTTP 401.
    [Tags]    spec:3.4-c
    ${device}    Device Id    alice-phone
    Execute Sql String    UPDATE devices SET revoked = true WHERE id = '${device}'    alias=${DB}
    ${how}    Connect Device Expecting Failure    alice-phone
    Should Start With    ${how}    auth_failed
    Should Contain    ${how}    4501
    ${token}    Mint Token    alice    alice-phone
    ${status}    Open Raw Connection    upgrade    ${token}    token_in=header
    Should Be Equal As Integers    ${status}    ${401}
    ${code}    Raw Upgrade Error Code    upgrade
    Should Be Equal    ${code}    auth_failed
