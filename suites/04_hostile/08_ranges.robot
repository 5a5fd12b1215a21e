*** Comments ***
# robocop: off=line-too-long


*** Settings ***
Documentation    Numbers out of range (P7, P16): receipts above the head or not positive,
...              history limits outside 1-100 or not integers, seqs that are not integers.
...              ``$HEAD+1`` is the head plus one at send time of the flood room, where nothing
...              else writes during this suite (the arena's trickle would race past it).

Resource         ../../resources/hostile.resource

Test Tags           P16
Suite Setup      The Hostile Arena Is Set Up
Suite Teardown   The Hostile Arena Is Torn Down
Test Setup       Snapshot Stored State
Test Teardown    The Case Left No Trace

Test Template    Frame "${frame}" Is Answered With "${outcome}"


*** Test Cases ***    FRAME    OUTCOME
Receipt Above The Head    {"type":"receipt","ref":"r1","conversation_id":"$FLOOD_ROOM","kind":"read","seq":$HEAD+1}    error out_of_range
    [Tags]    spec:4.4-b    P7
Receipt For Seq Zero    {"type":"receipt","ref":"r2","conversation_id":"$ARENA","kind":"read","seq":0}    error bad_request
    [Tags]    spec:4.4-a
Receipt For A Negative Seq    {"type":"receipt","ref":"r3","conversation_id":"$ARENA","kind":"delivered","seq":-5}    error bad_request
    [Tags]    spec:4.4-a
Receipt With A String Seq    {"type":"receipt","ref":"r4","conversation_id":"$ARENA","kind":"read","seq":"3"}    error bad_request
    [Tags]    spec:4.4-a
Receipt With A Boolean Seq    {"type":"receipt","ref":"r6","conversation_id":"$ARENA","kind":"read","seq":true}    error bad_request
    [Tags]    spec:4.4-a
History After A Boolean Seq    {"type":"history","ref":"h6","conversation_id":"$ARENA","after_seq":true}    error bad_request
    [Tags]    spec:4.5-a
Receipt For Seq 2^64    {"type":"receipt","ref":"r5","conversation_id":"$ARENA","kind":"read","seq":18446744073709551616}    error bad_request
    [Tags]    spec:4.4-a
History Limit Zero    {"type":"history","ref":"h1","conversation_id":"$ARENA","limit":0}    error bad_request
    [Tags]    spec:4.5-a
History Limit Negative    {"type":"history","ref":"h2","conversation_id":"$ARENA","limit":-5}    error bad_request
    [Tags]    spec:4.5-a
History Limit Over 100    {"type":"history","ref":"h3","conversation_id":"$ARENA","limit":101}    error bad_request
    [Tags]    spec:4.5-a
History Limit As A String    {"type":"history","ref":"h4","conversation_id":"$ARENA","limit":"10"}    error bad_request
    [Tags]    spec:4.5-a
History After A Fractional Seq    {"type":"history","ref":"h5","conversation_id":"$ARENA","after_seq":1.5}    error bad_request
    [Tags]    spec:4.5-a
Edit Of A Seq That Does Not Exist    {"type":"edit","ref":"e1","conversation_id":"$ARENA","seq":$HEAD+1,"expected_version":1,"body":"x"}    error not_found
    [Tags]    spec:4.3-f
