*** Settings ***
Documentation       Messages, edits, deletes, history and replay (protocol §1, §3.2, §4.2-§4.5,
...                 §5.2, §9).

Resource            ../../resources/conformance.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Teardown       Close All Devices


*** Test Cases ***
A Message Frame Carries Every Field And Starts At Version 1
    [Documentation]    Every field of §1, timestamps in UTC with ``Z``, no edit yet, version 1.
    [Tags]    spec:1-c    spec:1-d
    Devices Are Connected    alice-phone    bob-tablet
    ${seq}    "alice-phone" Sends "fields" To "team-room" And Gets Seq
    ${frame}    Wait For Message    bob-tablet    team-room    ${seq}
    FOR    ${field}    IN    message_id    conversation_id    seq    sender_user_id    sender_device_id
    ...    client_msg_id    body    version    deleted    created_at    edited_at
        Dictionary Should Contain Key    ${frame}    ${field}
    END
    Should Be Equal As Integers    ${frame}[version]    ${1}
    Should Be Equal    ${frame}[deleted]    ${False}
    Should Be Equal    ${frame}[edited_at]    ${None}
    Should End With    ${frame}[created_at]    Z

The Sender Gets Its Ack And Its Own Message Frame Exactly Once Each
    [Documentation]    The sending connection receives both; their order is not specified.
    [Tags]    spec:4.2-i
    Devices Are Connected    alice-phone
    ${ack}    Send Message    alice-phone    team-room    mine
    ${frames}    Received Frames    alice-phone    ack    ref=${ack}[ref]
    Length Should Be    ${frames}    1    the sender got ${frames.__len__()} acks for one send
    Wait For Message    alice-phone    team-room    ${ack}[seq]
    Mark Frames    alice-phone
    Should Not Receive Frame    alice-phone    message    window=${SILENCE_WINDOW}
    ...    seq=${ack}[seq]    conversation_id=${ack}[conversation_id]

A Retry With The Same Key Returns The Original And Broadcasts Nothing
    [Documentation]    Same device, key, conversation and body (keys in another order): the
    ...    original id and seq with ``duplicate: true``, also after an edit; bob gets no new frame.
    [Tags]    spec:4.2-f    P2
    Devices Are Connected    alice-phone    bob-tablet
    ${body}    Evaluate    {"text": "once", "n": 1}
    ${first}    Send Message    alice-phone    team-room    ${body}    client_msg_id=retry-1
    Wait For Message    bob-tablet    team-room    ${first}[seq]
    Mark Frames    bob-tablet
    ${same}    Evaluate    {"n": 1, "text": "once"}
    ${again}    Send Message    alice-phone    team-room    ${same}    client_msg_id=retry-1
    Should Be Equal    ${again}[duplicate]    ${True}
    Should Be Equal    ${again}[message_id]    ${first}[message_id]
    Should Be Equal    ${again}[seq]    ${first}[seq]
    Send Command    alice-phone    edit    conversation_id=team-room    seq=${first}[seq]
    ...    expected_version=${1}    body=edited
    ${late}    Send Message    alice-phone    team-room    ${body}    client_msg_id=retry-1
    Should Be Equal    ${late}[duplicate]    ${True}
    Should Be Equal    ${late}[seq]    ${first}[seq]
    Should Not Receive Frame    bob-tablet    message    window=${SILENCE_WINDOW}
    ...    conversation_id=${first}[conversation_id]

An Edit Raises The Version And Reaches The Devices That Have The Message
    [Documentation]    expected_version 1 is current: version 2, ``edited_at`` set, the ack
    ...    carries the new version and bob's device gets ``message_updated``.
    [Tags]    spec:1-d    spec:4.3-b    spec:5.2-a
    Devices Are Connected    alice-phone    bob-tablet
    ${seq}    "alice-phone" Sends "first words" To "team-room" And Gets Seq
    Wait For Message    bob-tablet    team-room    ${seq}
    ${ack}    Send Command    alice-phone    edit    conversation_id=team-room    seq=${seq}
    ...    expected_version=${1}    body=second words
    Reply Should Be An Ack For "edit"    ${ack}
    Should Be Equal As Integers    ${ack}[version]    ${2}
    ${update}    Wait For Frame    bob-tablet    message_updated    seq=${seq}    version=2
    Should Be Equal    ${update}[body]    second words
    Should Not Be Equal    ${update}[edited_at]    ${None}

A Delete Is A Tombstone That Reaches Every Device And Keeps Its Seq
    [Documentation]    ``deleted: true``, ``body: null``, version raised; the row stays; the next
    ...    message takes the next seq, never the deleted one.
    [Tags]    spec:1-e    spec:4.3-g
    Devices Are Connected    alice-phone    alice-laptop    bob-tablet
    ${seq}    "alice-phone" Sends "regret" To "team-room" And Gets Seq
    Wait For Message    bob-tablet    team-room    ${seq}
    Wait For Message    alice-laptop    team-room    ${seq}
    ${ack}    Send Command    alice-phone    delete    conversation_id=team-room    seq=${seq}
    ...    expected_version=${1}
    Reply Should Be An Ack For "delete"    ${ack}
    FOR    ${device}    IN    bob-tablet    alice-laptop
        ${tomb}    Wait For Frame    ${device}    message_updated    seq=${seq}    deleted=true
        Should Be Equal    ${tomb}[body]    ${None}
    END
    ${room}    Conversation Id    team-room
    Check Query Result    SELECT deleted FROM messages WHERE conversation_id = '${room}' AND seq = ${seq}
    ...    ==    ${True}    alias=${DB}
    ${next}    "alice-phone" Sends "after the delete" To "team-room" And Gets Seq
    Should Be Equal As Integers    ${next}    ${seq + 1}

Editing Or Deleting A Deleted Message Is Always A Conflict
    [Documentation]    Any expected_version, edit or delete: ``conflict`` with the tombstone as
    ...    ``current``.
    [Tags]    spec:4.3-d
    Devices Are Connected    alice-phone
    ${seq}    "alice-phone" Sends "short-lived" To "team-room" And Gets Seq
    Send Command    alice-phone    delete    conversation_id=team-room    seq=${seq}    expected_version=${1}
    FOR    ${command}    ${version}    IN    delete    ${2}    delete    ${1}    edit    ${2}
        ${reply}    Send Command    alice-phone    ${command}    conversation_id=team-room
        ...    seq=${seq}    expected_version=${version}    body=again
        Reply Should Be Error "conflict"    ${reply}
        Should Be Equal    ${reply}[current][deleted]    ${True}
        Should Be Equal    ${reply}[current][body]    ${None}
        Should Be Equal As Integers    ${reply}[current][version]    ${2}
    END

Only The Sender's User May Edit Its Message
    [Documentation]    bob (a member) gets ``forbidden``; alice's other device may edit.
    [Tags]    spec:4.3-e
    Devices Are Connected    alice-phone    alice-laptop    bob-tablet
    ${seq}    "alice-phone" Sends "alice wrote this" To "team-room" And Gets Seq
    ${reply}    Send Command    bob-tablet    edit    conversation_id=team-room    seq=${seq}
    ...    expected_version=${1}    body=bob rewrote it
    Reply Should Be Error "forbidden"    ${reply}
    ${reply}    Send Command    alice-laptop    edit    conversation_id=team-room    seq=${seq}
    ...    expected_version=${1}    body=alice again
    Reply Should Be An Ack For "edit"    ${reply}

Edit Fields Out Of Range Are Bad Requests
    [Documentation]    seq 0, expected_version 0 and an edit without a body are refused.
    [Tags]    spec:4.3-a
    Devices Are Connected    alice-phone
    ${seq}    "alice-phone" Sends "to edit" To "team-room" And Gets Seq
    ${reply}    Send Command    alice-phone    edit    conversation_id=team-room    seq=${0}
    ...    expected_version=${1}    body=x
    Reply Should Be Error "bad_request"    ${reply}
    ${reply}    Send Command    alice-phone    edit    conversation_id=team-room    seq=${seq}
    ...    expected_version=${0}    body=x
    Reply Should Be Error "bad_request"    ${reply}
    ${reply}    Send Command    alice-phone    edit    conversation_id=team-room    seq=${seq}
    ...    expected_version=${1}
    Reply Should Be Error "bad_request"    ${reply}

History Pages Run Forward From After Seq And Backward From The Newest
    [Documentation]    After ``after_seq``: the oldest page, ``has_more`` when newer follow; without
    ...    it: the newest page (below ``before_seq``), ``has_more`` when older exist.
    [Tags]    spec:4.5-b    spec:4.5-c
    Devices Are Connected    alice-phone
    "alice-phone" Sends 5 Messages To "team-room"
    History Of "alice-phone" In "team-room" Should Be [2, 3] With More True    after_seq=${1}    limit=${2}
    History Of "alice-phone" In "team-room" Should Be [4] With More False    after_seq=${3}    before_seq=${5}
    History Of "alice-phone" In "team-room" Should Be [4, 5] With More True    limit=${2}
    History Of "alice-phone" In "team-room" Should Be [1, 2] With More False    before_seq=${3}    limit=${5}
    History Of "alice-phone" In "team-room" Should Be [1, 2, 3, 4, 5] With More False

History Shows Current Versions And Tombstones In Ascending Order
    [Documentation]    An edited message appears edited, a deleted one as its tombstone.
    [Tags]    spec:4.5-d
    Devices Are Connected    alice-phone
    "alice-phone" Sends 3 Messages To "team-room"
    Send Command    alice-phone    edit    conversation_id=team-room    seq=${1}    expected_version=${1}
    ...    body=edited
    Send Command    alice-phone    delete    conversation_id=team-room    seq=${2}    expected_version=${1}
    ${reply}    Send Command    alice-phone    history    conversation_id=team-room
    ${seqs}    History Seqs    ${reply}
    Should Be Equal    ${seqs}    ${{ [1, 2, 3] }}
    Should Be Equal    ${reply}[messages][0][body]    edited
    Should Be Equal As Integers    ${reply}[messages][0][version]    ${2}
    Should Be Equal    ${reply}[messages][1][deleted]    ${True}
    Should Be Equal    ${reply}[messages][1][body]    ${None}

Replayed Messages Come In Their Current Version
    [Documentation]    bob-phone was never connected: its replay has the edit and the tombstone.
    [Tags]    spec:3.2-e
    Devices Are Connected    alice-phone
    "alice-phone" Sends 2 Messages To "team-room"
    Send Command    alice-phone    edit    conversation_id=team-room    seq=${1}    expected_version=${1}
    ...    body=edited before replay
    Send Command    alice-phone    delete    conversation_id=team-room    seq=${2}    expected_version=${1}
    Devices Are Connected    bob-phone
    ${first}    Wait For Message    bob-phone    team-room    1
    Should Be Equal    ${first}[body]    edited before replay
    ${second}    Wait For Message    bob-phone    team-room    2
    Should Be Equal    ${second}[deleted]    ${True}

The Offline Cursor Moves Only With Receipts
    [Documentation]    Without a receipt a reconnect replays everything again; after
    ...    ``receipt delivered 2`` the next connect starts after 2.
    [Tags]    spec:3.2-c    spec:3.2-a
    Devices Are Connected    alice-phone    bob-phone
    "alice-phone" Sends 2 Messages To "team-room"
    Messages Should Be Received In Order    bob-phone    team-room    1    2
    Disconnect Device    bob-phone
    ${welcome}    Connect Device    bob-phone
    ${room}    Conversation Id    team-room
    Should Be Equal As Integers    ${welcome}[conversations][${room}][from_seq]    ${0}
    Messages Should Be Received In Order    bob-phone    team-room    1    2
    Send Receipt    bob-phone    team-room    delivered    2
    Disconnect Device    bob-phone
    ${welcome}    Connect Device    bob-phone
    Should Be Equal As Integers    ${welcome}[conversations][${room}][from_seq]    ${2}

A Direct Update Of A Message Row Reaches Devices As message_updated
    [Documentation]    Another program updates the row (version and edited_at raised).
    [Tags]    spec:9-d    spec:5.2-a
    Devices Are Connected    alice-phone    bob-tablet
    ${seq}    "alice-phone" Sends "before the batch job" To "team-room" And Gets Seq
    Wait For Message    bob-tablet    team-room    ${seq}
    ${room}    Conversation Id    team-room
    ${sql}    Catenate    UPDATE messages SET body = '"rewritten by a batch job"',
    ...    version = version + 1, edited_at = now() WHERE conversation_id = '${room}' AND seq = ${seq}
    Execute Sql String    ${sql}    alias=${DB}
    ${update}    Wait For Frame    bob-tablet    message_updated    seq=${seq}    version=2
    Should Be Equal    ${update}[body]    rewritten by a batch job
