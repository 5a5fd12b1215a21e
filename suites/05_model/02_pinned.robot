*** Settings ***
Documentation       Defects the model walks found, pinned as plain regression tests: each replays the
...                 shrunk walk with the kit's vocabulary and asserts what the protocol says.

Resource            ../../resources/ccs.resource


*** Test Cases ***
A Retry Of A Key Whose Row Another Program Inserted Is A Duplicate
    [Documentation]    A row written straight into ``messages`` (§9) holds the device's key; a
    ...    retry of that key with the same JSON value answers the original with
    ...    ``duplicate: true`` (§4.2-f, P2). The server used to answer
    ...    ``idempotency_conflict``: the directly inserted row had no send digest.
    [Tags]    seed-1.1    spec:4.2-f
    User "u0" With Devices    u0-d0
    Create Conversation    c0    u0
    Connect Device    u0-d0
    ${body}    Evaluate    {"text": "written by another program", "n": 1}
    ${row}    Insert Message As Another Program    c0    u0-d0    ${body}    client_msg_id=k-sql-1
    ${reply}    Send Message Expecting Reply    u0-d0    c0    ${body}    client_msg_id=k-sql-1
    Should Be Equal    ${reply}[type]    ack    the retry was refused: ${reply}
    Should Be Equal    ${reply}[duplicate]    ${True}    the retry was not a duplicate: ${reply}
    Should Be Equal As Integers    ${reply}[seq]    ${row}[seq]

A Frame Of Exactly The Frame Limit Is Read And One Byte More Closes With 1009
    [Documentation]    §7-c refuses frames *larger* than ``max_frame_bytes``. A frame of exactly
    ...    the limit is read (here its body is over the body limit: ``too_large``, connection
    ...    open); one byte more closes with 1009. The server used to close at exactly the limit
    ...    (its WebSocket layer refuses a message whose size equals its own limit).
    [Tags]    spec:7-c
    User "u0" With Devices    u0-d0    u0-d1
    Create Conversation    c0    u0
    ${welcome}    Connect Device    u0-d0
    Connect Device    u0-d1
    VAR    ${limit}    ${welcome}[limits][max_frame_bytes]
    "u0-d0" Sends A Frame Of ${limit} Bytes To "c0"
    Wait For Frame    u0-d0    error    code=too_large    ref=big
    "u0-d1" Sends A Frame Of ${limit + 1} Bytes To "c0"
    ${how}    Device Close Code    u0-d1
    Should Start With    ${how}    1009


*** Keywords ***
"${device}" Sends A Frame Of ${size} Bytes To "${conversation}"
    [Documentation]    One ``send`` text frame (ref ``big``) padded to exactly ``size`` bytes.
    ${conv}    Conversation Id    ${conversation}
    VAR    ${head}    {"type":"send","ref":"big","conversation_id":"${conv}",
    ...    "client_msg_id":"big-${size}","body":{"text":"    separator=${EMPTY}
    ${frame}    Evaluate    $head.ljust(int($size) - 3, 'x') + '"' + chr(125) * 2
    Send Raw    ${device}    ${frame}
