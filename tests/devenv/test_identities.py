from modelreg.devenv import identities


def test_people_of_the_contract_and_their_groups():
    groups = {p.name: p.groups for p in identities.PEOPLE}
    assert groups == {
        "admin": ("system:masters",),
        "alice": ("ml-approvers",),
        "bob": ("ml-approvers",),
        "dana": ("data-scientists",),
        "eve": (),
    }


def test_token_file_has_one_line_per_identity_and_quotes_groups():
    tokens = identities.new_tokens()
    text = identities.token_file(tokens)
    assert [line.split(",")[:3] for line in text.splitlines()] == [
        [tokens[i.name], i.name, i.name] for i in identities.ALL
    ]
    alice = next(line for line in text.splitlines() if ",alice," in line)
    assert alice == f'{tokens["alice"]},alice,alice,"ml-approvers"'
    eve = next(line for line in text.splitlines() if ",eve," in line)
    assert eve == f"{tokens['eve']},eve,eve"  # no group column, not an empty group


def test_tokens_are_unique_and_long():
    tokens = identities.new_tokens()
    assert len(set(tokens.values())) == len(tokens)
    assert all(len(t) >= 40 for t in tokens.values())
