*** Settings ***
Documentation       Membership and the join point (protocol §3.2, §4.5, §5.4, §5.5, §8.4, §9): a
...                 member added later owns only what came after it joined.

Resource            ../../resources/conformance.resource

Suite Setup         The Environment Is Ready
Suite Teardown      The Environment Is Released
Test Setup          A Team Room Where Alice And Bob Are Members And Carol Is Not
Test Teardown       Close All Devices


*** Test Cases ***
A Member Added While Offline Receives Only Messages After Its Join Point
    [Documentation]    carol joins at head 3 while offline: on connect ``from_seq`` is 3,
    ...    ``recovered`` is true and only seq 4 is replayed.
    [Tags]    spec:3.2-b    P8
    Devices Are Connected    alice-phone
    "alice-phone" Sends 3 Messages To "team-room"
    Add Member    team-room    carol
    "alice-phone" Sends "after carol joined" To "team-room"
    ${welcome}    Connect Device    carol-phone
    ${room}    Conversation Id    team-room
    VAR    ${entry}    ${welcome}[conversations][${room}]
    Should Be Equal    ${entry}[recovered]    ${True}    ${entry}
    Should Be Equal As Integers    ${entry}[from_seq]    ${3}
    Wait For Message    carol-phone    team-room    4
    ${seqs}    Received Seqs    carol-phone    team-room
    Should Be Equal    ${seqs}    ${{ [4] }}

A New Member Resuming From Seq 0 Still Starts At Its Join Point
    [Documentation]    carol joins at head 3 and her first hello names ``resume: {team-room: 0}``:
    ...    the replay still starts after her join point (``from_seq`` 3, only seq 4). A resume seq
    ...    below the join point never opens history from before she was a member.
    [Tags]    spec:3.2-b    P8    P15
    Devices Are Connected    alice-phone
    "alice-phone" Sends 3 Messages To "team-room"
    Add Member    team-room    carol
    "alice-phone" Sends "after carol joined" To "team-room"
    ${room}    Conversation Id    team-room
    ${welcome}    Connect Device    carol-phone    resume=${{ {$room: 0} }}
    VAR    ${entry}    ${welcome}[conversations][${room}]
    Should Be Equal As Integers    ${entry}[from_seq]    ${3}    ${entry}
    Wait For Message    carol-phone    team-room    4
    ${seqs}    Received Seqs    carol-phone    team-room
    Should Be Equal    ${seqs}    ${{ [4] }}

Pre-Join Messages Never Count As Missed
    [Documentation]    More messages before carol joined than the replay limit: her connect is
    ...    still ``recovered: true`` with nothing to replay.
    [Tags]    spec:3.2-b    spec:3.2-g
    Insert Flood As Another Program    team-room    alice-phone    rows=1050    body_bytes=10
    Add Member    team-room    carol
    ${welcome}    Connect Device    carol-phone
    ${room}    Conversation Id    team-room
    VAR    ${entry}    ${welcome}[conversations][${room}]
    Should Be Equal    ${entry}[recovered]    ${True}    ${entry}
    Should Be Equal As Integers    ${entry}[from_seq]    ${entry}[head_seq]

More Missed Messages Than The Replay Limit Are Reported As Truncated
    [Documentation]    bob-phone missed 1050 messages: ``recovered: false``, ``too_many_missed``,
    ...    ``truncated``; the replay starts at ``oldest_available_seq`` = ``from_seq`` + 1 and
    ...    runs to the head, in order.
    [Tags]    spec:3.2-g    P8
    Insert Flood As Another Program    team-room    alice-phone    rows=1050    body_bytes=10
    ${welcome}    Connect Device    bob-phone
    ${room}    Conversation Id    team-room
    VAR    ${entry}    ${welcome}[conversations][${room}]
    Should Be Equal    ${entry}[recovered]    ${False}    ${entry}
    Should Be Equal    ${entry}[reason]    too_many_missed
    Should Be Equal    ${entry}[truncated]    ${True}
    Should Be Equal As Integers    ${entry}[oldest_available_seq]    ${{ $entry["from_seq"] + 1 }}
    Should Be True    ${entry}[from_seq] > 0
    Messages Should Be Received In Order    bob-phone    team-room
    ...    ${entry}[oldest_available_seq]    ${entry}[head_seq]    timeout=30s

History Of A Member Starts At Its Join Point, An Admin Reads Everything
    [Documentation]    carol joined at head 3: her history holds only seq 4, paging before it is
    ...    empty without ``has_more``; an admin token reads 1 to 4 over REST.
    [Tags]    spec:4.5-e    spec:8.4-c
    Devices Are Connected    alice-phone
    "alice-phone" Sends 3 Messages To "team-room"
    Add Member    team-room    carol
    "alice-phone" Sends "after carol joined" To "team-room"
    Devices Are Connected    carol-phone
    History Of "carol-phone" In "team-room" Should Be [4] With More False
    History Of "carol-phone" In "team-room" Should Be [] With More False    before_seq=${3}
    ${room}    Conversation Id    team-room
    ${page}    Call Api    GET    /v1/conversations/${room}/messages
    ${seqs}    Evaluate    [m["seq"] for m in $page["messages"]]
    Should Be Equal    ${seqs}    ${{ [1, 2, 3, 4] }}

A Member Added While Connected Is Told And Receives What Follows
    [Documentation]    ``member_added`` reaches carol and the members; alice's next message
    ...    reaches carol live.
    [Tags]    spec:5.5-a
    Devices Are Connected    alice-phone    bob-tablet    carol-phone
    "alice-phone" Sends 2 Messages To "team-room"
    Add Member    team-room    carol
    ${carol}    User Id    carol
    ${room}    Conversation Id    team-room
    Wait For Frame    carol-phone    member_added    conversation_id=${room}    user_id=${carol}
    Wait For Frame    bob-tablet    member_added    conversation_id=${room}    user_id=${carol}
    ${seq}    "alice-phone" Sends "welcome carol" To "team-room" And Gets Seq
    Wait For Message    carol-phone    team-room    ${seq}
    ${seqs}    Received Seqs    carol-phone    team-room
    Should Be Equal    ${seqs}    ${{ [${seq}] }}

A Membership Row Inserted By Another Program Acts Like Adding A Member
    [Documentation]    An ``INSERT`` into ``conversation_members``: carol is told and receives
    ...    the next message, not the earlier ones.
    [Tags]    spec:9-e
    Devices Are Connected    alice-phone    carol-phone
    "alice-phone" Sends 2 Messages To "team-room"
    ${carol}    User Id    carol
    ${room}    Conversation Id    team-room
    Execute Sql String
    ...    INSERT INTO conversation_members (conversation_id, user_id) VALUES ('${room}', '${carol}')
    ...    alias=${DB}
    Wait For Frame    carol-phone    member_added    conversation_id=${room}    user_id=${carol}
    ${seq}    "alice-phone" Sends "now carol too" To "team-room" And Gets Seq
    Wait For Message    carol-phone    team-room    ${seq}
    ${seqs}    Received Seqs    carol-phone    team-room
    Should Be Equal    ${seqs}    ${{ [${seq}] }}

A Reconnect Within The Grace Period Does Not Flap
    [Documentation]    alice-phone closes and connects again at once: bob-tablet is not told
    ...    it went offline (the grace period is 300 ms on the reference server).
    [Tags]    spec:5.4-b    P10
    Devices Are Connected    bob-tablet    alice-phone
    ${phone}    Device Id    alice-phone
    Wait For Frame    bob-tablet    presence    device_id=${phone}    status=online
    Mark Frames    bob-tablet
    Disconnect Device    alice-phone
    Connect Device    alice-phone
    Should Not Receive Frame    bob-tablet    presence    window=${PRESENCE_TIMEOUT}
    ...    device_id=${phone}    status=offline
