package strictjson

// NextMember reads the member of the object obj that follows offset i:
// right after the opening brace, or the next returned by the previous call.
// It returns the key literal (quotes included), the value, and the offset
// to pass to the next call; at the closing brace it returns ok false.
//
// obj must be a value that a Scanner has validated under some profile (or
// a value inside one): like AppendCompact, NextMember does not validate it
// again, it only tells strings from what lies between them, which is what
// lets a caller that was handed validated bytes read them without a second
// validation. Given anything else it does not panic, but what it returns is
// unspecified.
func NextMember(obj []byte, i int) (key, val []byte, next int, ok bool) {
	i = skipSpace(obj, i)
	if i < len(obj) && obj[i] == ',' {
		i = skipSpace(obj, i+1)
	}
	if i >= len(obj) || obj[i] != '"' {
		return nil, nil, i, false // the closing brace
	}
	kEnd := strEnd(obj, i+1)
	key = obj[i:kEnd]
	j := skipSpace(obj, kEnd)
	if j < len(obj) && obj[j] == ':' {
		j++
	}
	j = skipSpace(obj, j)
	vEnd := ValueEnd(obj, j)
	return key, obj[j:vEnd], vEnd, true
}

// ValueEnd returns the offset just past the value that starts at v[i], in
// a document that a Scanner has validated, without validating it again (see
// NextMember). It does not recurse, so nesting costs no stack.
func ValueEnd(v []byte, i int) int {
	if i >= len(v) {
		return len(v)
	}
	switch v[i] {
	case '"':
		return strEnd(v, i+1)
	case '{', '[':
		depth := 0
		for i < len(v) {
			switch v[i] {
			case '"':
				i = strEnd(v, i+1)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				if depth--; depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(v)
	}
	// A number or a literal ends at a delimiter.
	for i < len(v) {
		switch v[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && spaceTable[v[i]] {
		i++
	}
	return i
}

// strEnd is stringEnd's end.
func strEnd(v []byte, i int) int {
	end, _, _ := stringEnd(v, i)
	return end
}
